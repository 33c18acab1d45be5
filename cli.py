"""x"""
def app() -> None:
    pass
