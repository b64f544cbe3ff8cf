"""render: Hiera 5 data -> Jinja2 -> config files in systemd-nspawn containers -> try-restart."""

__version__ = "0.1.0"
