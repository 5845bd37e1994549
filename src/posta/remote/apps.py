from django.apps import AppConfig


class RemoteConfig(AppConfig):
    name = "posta.remote"
    label = "remote"

    def ready(self) -> None:
        # posta.accounts may not import network code; the account form's connection
        # test is handed to it here, through its typed registry.
        from posta.accounts.discovery import register_server_finder
        from posta.accounts.oauth import register_oauth_client
        from posta.accounts.services import register_connection_probe
        from posta.remote.discovery import find_servers
        from posta.remote.oauth import OAuthClient
        from posta.remote.probe import probe_account

        register_connection_probe(probe_account)
        register_server_finder(find_servers)
        # Sign-in's code-for-token exchange and revocation, the same way.
        register_oauth_client(OAuthClient())
