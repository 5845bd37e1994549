from django.apps import AppConfig


class RemoteConfig(AppConfig):
    name = "posta.remote"
    label = "remote"

    def ready(self) -> None:
        # posta.accounts may not import network code; the account form's connection
        # test is handed to it here, through its typed registry.
        from posta.accounts.services import register_connection_probe
        from posta.remote.probe import probe_account

        register_connection_probe(probe_account)
