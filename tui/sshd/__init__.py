"""``sessionwatch ssh-server``: the dashboard as an SSH endpoint (asyncssh).

Public-key authentication only, a role per key from the authorized-keys file, one
dashboard process per connection in its own pseudo-terminal, and no shell, exec,
subsystem or forwarding. Modules: :mod:`.keys` (authorized keys, identities, untrusted
text), :mod:`.guard` (failed-authentication limits), :mod:`.pty` (a child in a pty),
:mod:`.child` (the child's entry point), :mod:`.server` (the SSH side).
"""
