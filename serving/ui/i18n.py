"""Every string of the CSM page in English and Japanese (the reasons and plays come from the store).

Keys are looked up with :func:`text`; a key missing in one language is a test failure, not a
runtime fallback (``tests/ui/test_views.py`` checks both languages have the same keys).
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["en", "ja"]
UI_LANGS: tuple[Lang, ...] = ("en", "ja")

STRINGS: dict[str, dict[Lang, str]] = {
    "title": {"en": "Accounts at risk", "ja": "リスクのあるアカウント"},
    "app": {"en": "churnlens", "ja": "churnlens"},
    "book": {"en": "Book of accounts", "ja": "担当アカウント一覧"},
    "scored_as_of": {"en": "Scored as of {date}", "ja": "{date} 時点のスコア"},
    "no_scores": {
        "en": "No scores yet. Run `churnlens score` to fill the score store.",
        "ja": "スコアがまだありません。`churnlens score` を実行してください。",
    },
    "filters": {"en": "Filters", "ja": "絞り込み"},
    "csm": {"en": "CSM", "ja": "担当CSM"},
    "tier": {"en": "Touch tier", "ja": "タッチモデル"},
    "band": {"en": "Risk band", "ja": "リスク区分"},
    "segment": {"en": "Segment", "ja": "セグメント"},
    "all": {"en": "All", "ja": "すべて"},
    "none": {"en": "(none)", "ja": "（なし）"},
    "apply": {"en": "Apply", "ja": "適用"},
    "clear": {"en": "Clear", "ja": "クリア"},
    "export": {"en": "Export CSV", "ja": "CSV出力"},
    "accounts": {"en": "Accounts", "ja": "アカウント数"},
    "arr": {"en": "ARR", "ja": "ARR"},
    "arr_at_risk": {"en": "ARR at risk", "ja": "リスクARR"},
    "rank": {"en": "#", "ja": "#"},
    "account": {"en": "Account", "ja": "アカウント"},
    "risk": {"en": "Churn risk", "ja": "解約リスク"},
    "health": {"en": "Health", "ja": "ヘルススコア"},
    "change": {"en": "Since last scoring", "ja": "前回からの変化"},
    "trend": {"en": "Trend", "ja": "推移"},
    "why": {"en": "Why", "ja": "主な理由"},
    "next_play": {"en": "Next play", "ja": "次のアクション"},
    "showing": {"en": "{first}–{last} of {total} accounts", "ja": "全{total}件中 {first}–{last}件"},
    "prev_page": {"en": "← Previous", "ja": "← 前へ"},
    "next_page": {"en": "Next →", "ja": "次へ →"},
    "no_match": {
        "en": "No account matches these filters.",
        "ja": "条件に合うアカウントはありません。",
    },
    "language": {"en": "日本語", "ja": "English"},
    "logout": {"en": "Sign out", "ja": "ログアウト"},
    # change since the previous scoring
    "change_first": {"en": "first scoring", "ja": "初回スコア"},
    "change_new_red": {"en": "new in red", "ja": "新たに赤"},
    "change_up": {"en": "risk up {pts} pts", "ja": "リスク {pts}pt 上昇"},
    "change_down": {"en": "risk down {pts} pts", "ja": "リスク {pts}pt 低下"},
    "change_steady": {"en": "no change", "ja": "変化なし"},
    # bands, tiers
    "band_red": {"en": "red", "ja": "赤"},
    "band_yellow": {"en": "yellow", "ja": "黄"},
    "band_green": {"en": "green", "ja": "緑"},
    "tier_high": {"en": "high-touch", "ja": "ハイタッチ"},
    "tier_low": {"en": "low-touch", "ja": "ロータッチ"},
    "tier_tech": {"en": "tech-touch", "ja": "テックタッチ"},
    # plays
    "owner_csm": {"en": "CSM", "ja": "CSM"},
    "owner_support_engineer": {"en": "support engineer", "ja": "サポートエンジニア"},
    "owner_account_executive": {"en": "account executive", "ja": "営業担当"},
    "owner_cs_ops": {"en": "CS Ops", "ja": "CSオペレーション"},
    "owner_automation": {"en": "automation", "ja": "自動配信"},
    "owner_executive_sponsor": {"en": "executive sponsor", "ja": "エグゼクティブスポンサー"},
    "channel_call": {"en": "call", "ja": "電話"},
    "channel_email": {"en": "email", "ja": "メール"},
    "channel_meeting": {"en": "meeting", "ja": "ミーティング"},
    "channel_in_app": {"en": "in-app", "ja": "アプリ内"},
    "channel_webinar": {"en": "webinar", "ja": "ウェビナー"},
    "channel_ticket": {"en": "ticket", "ja": "チケット"},
    "channel_chat": {"en": "chat", "ja": "チャット"},
    "channel_help_center": {"en": "help centre", "ja": "ヘルプセンター"},
    "urgency_high": {"en": "urgent", "ja": "緊急"},
    "urgency_medium": {"en": "soon", "ja": "早めに"},
    "urgency_low": {"en": "when possible", "ja": "余裕があれば"},
    "due": {"en": "due {date}", "ja": "期日 {date}"},
    "owner_due": {"en": "{owner} · due {date}", "ja": "{owner}・期日 {date}"},
    "day_n": {"en": "day {n}", "ja": "{n}日目"},
    # account page
    "back": {"en": "← All accounts", "ja": "← 一覧へ戻る"},
    "model": {"en": "Model", "ja": "モデル"},
    "risk_history": {"en": "Risk history", "ja": "リスクの推移"},
    "reasons": {"en": "Reasons", "ja": "理由"},
    "impact": {"en": "impact", "ja": "影響度"},
    "plays": {"en": "Recommended plays", "ja": "推奨アクション"},
    "tasks": {"en": "Tasks", "ja": "タスク"},
    "activity": {"en": "Weekly activity (last {n} weeks)", "ja": "週次アクティビティ（直近{n}週）"},
    "no_activity": {
        "en": "No weekly activity was stored with this score (stored by `churnlens score`).",
        "ja": "このスコアには週次アクティビティが保存されていません"
        "（`churnlens score` で保存されます）。",
    },
    "no_reasons": {"en": "No risk-raising reason.", "ja": "リスクを高める理由はありません。"},
    "no_plays": {"en": "No play recommended.", "ja": "推奨アクションはありません。"},
    "silent_title": {"en": "Silent customer", "ja": "サイレントカスタマー"},
    "silent_text": {
        "en": "Logins are declining and every feedback channel is quiet (no tickets, no survey "
        "answers, no replies). Quiet is not healthy: reach out before the renewal.",
        "ja": "ログインが減少し、問い合わせ・アンケート回答・返信のすべての接点が途絶えています。"
        "静かなのは健全の証ではありません。更新前に接点を作りましょう。",
    },
    "scored_in": {
        "en": "Reasons and plays shown in {lang}: this score was stored in that language only.",
        "ja": "理由とアクションは{lang}で表示しています（この言語でのみ保存されています）。",
    },
    "lang_en": {"en": "English", "ja": "英語"},
    "lang_ja": {"en": "Japanese", "ja": "日本語"},
    "m_logins": {"en": "Logins", "ja": "ログイン数"},
    "m_active_users": {"en": "Active users", "ja": "アクティブユーザー数"},
    "m_distinct_features": {"en": "Breadth (features used)", "ja": "利用機能の幅"},
    "m_tickets_opened": {"en": "Support tickets", "ja": "問い合わせ件数"},
    "m_surveys_answered": {"en": "Survey answers", "ja": "アンケート回答数"},
    "m_touches": {"en": "Touches (all channels)", "ja": "接点数（全チャネル）"},
    "m_unknown": {"en": "no data source", "ja": "データなし"},
    "m_total": {"en": "total {n}", "ja": "合計 {n}"},
    "not_found": {
        "en": "No stored score for this account.",
        "ja": "このアカウントのスコアはありません。",
    },
    # login
    "login_title": {"en": "Sign in", "ja": "ログイン"},
    "login_help": {
        "en": "This churnlens server needs its API key (CHURNLENS_API_KEY).",
        "ja": "このサーバーにはAPIキー（CHURNLENS_API_KEY）が必要です。",
    },
    "api_key": {"en": "API key", "ja": "APIキー"},
    "sign_in": {"en": "Sign in", "ja": "ログイン"},
    "bad_key": {"en": "That key is not right.", "ja": "キーが正しくありません。"},
    "bad_request": {"en": "Bad request", "ja": "不正なリクエスト"},
    "store_down": {
        "en": "The score store cannot be read right now.",
        "ja": "スコアストアを読み込めません。",
    },
}


def text(key: str, lang: str, **values: object) -> str:
    """The string ``key`` in ``lang`` (English for an unknown language), with ``values`` in."""
    entry = STRINGS[key]
    s = entry["ja"] if lang == "ja" else entry["en"]
    return s.format(**values) if values else s
