"""Running the web application: waitress in production, Flask's development server with --debug."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flux_web.errors import WebserverError

log = logging.getLogger(__name__)


def sync_dag_folder() -> None:
    """Record the DAG folder's DAGs and import errors (what the DAG list shows), once.

    The scheduler keeps them current while it runs; this lets a web server started on its own show
    the DAG folder too. Runs in a background thread: a slow DAG folder never delays serving.
    """
    from flux.config import get_config
    from flux.scheduler import DagFolder

    if not get_config().dags_folder.exists():
        return
    try:
        DagFolder(None).refresh()
    except Exception:  # the web server keeps serving what the database already holds
        log.exception("could not read the DAG folder")


def serve(host: str, port: int, workers: int, debug: bool = False,
          echo: Callable[[str], None] = print, sync_dags: bool = True) -> None:
    """Build the application and serve it until interrupted."""
    from flux_web.app import create_app
    from flux_web.users import list_users

    app = create_app()
    if not list_users():
        echo("No web users yet: nobody can sign in. Create one with: "
             "flux users create -u admin -r admin")
    if sync_dags:
        threading.Thread(target=sync_dag_folder, name="flux-web-dag-sync", daemon=True).start()
    if debug:
        _check_can_listen(host, port)
        echo(f"Flux webserver (Flask development server, debug) on http://{host}:{port}/")
        app.run(host=host, port=port, debug=True, use_reloader=False, threaded=True)
        return
    import waitress

    try:
        server = waitress.create_server(app, host=host, port=port, threads=workers, ident="flux")
    except OSError as exc:
        raise WebserverError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    echo(f"Flux webserver on http://{host}:{server.effective_port}/ ({workers} threads)")  # type: ignore[union-attr]
    try:
        server.run()
    finally:
        server.close()


def _check_can_listen(host: str, port: int) -> None:
    """Fail with one line when the address cannot be bound (Flask's server would print a page)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _name, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise WebserverError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class BackgroundServer:
    """The application served by waitress in a thread (tests, screenshots): ``with ... as url``."""

    def __init__(self, app: object, host: str = "127.0.0.1", port: int = 0, threads: int = 4) -> None:
        import waitress

        self.server = waitress.create_server(app, host=host, port=port, threads=threads, ident="flux")
        self.url = f"http://{host}:{self.server.effective_port}"  # type: ignore[union-attr]
        self.thread = threading.Thread(target=self.server.run, name="flux-web-server", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return self.url

    def __exit__(self, *exc_info: object) -> None:
        # Let requests being served finish before the sockets go, then end the serving loop.
        self.server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)  # type: ignore[union-attr]
        self.server.close()
        for channel in list(self.server._map.values()):  # type: ignore[union-attr]
            channel.close()
        self.thread.join(timeout=10)
