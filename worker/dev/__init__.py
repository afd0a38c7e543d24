"""Development tooling: a project-local PostgreSQL (``localpg``) and the local stack ``shopsync dev`` runs
(``stack``: PostgreSQL, the platform sandboxes, web and worker, demo stores connected through their real
flows). Never used by a production process; the sandboxes it starts are a separate package
(``sandboxes/``) that the dev set-up installs."""
