from django.apps import AppConfig


class SharesConfig(AppConfig):
    name = "posta.shares"
    label = "shares"
    verbose_name = "Shared conversations"

    def ready(self) -> None:
        # A shared message stays while a share shows it (DESIGN §5).
        from posta.mail import keepers
        from posta.shares.keeper import needed_by_shares

        keepers.register_keeper("shares.shared", needed_by_shares)
