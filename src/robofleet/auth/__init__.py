"""Access control: users, roles, tokens, panel sessions and the audit log."""

from robofleet.domain import Domain, NavEntry

DOMAIN = Domain(
    name="auth",
    package=__name__,
    tables=("robofleet.auth.models", "robofleet.auth.cache"),
    actions="robofleet.auth.actions:register",
    api=("robofleet.auth.api:router",),
    panel=("robofleet.auth.panel:router",),
    templates=True,
    navigation=(NavEntry("access", "Access", "/panel/access/users", "a", order=80, permission="users:read"),),
)
