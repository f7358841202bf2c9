"""The exit codes of ``mlmon``: 0 ok, 1 runtime failure, 2 usage or configuration error."""

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
#: stdout closed by its reader: 128 + SIGPIPE, as the shell reports a command that SIGPIPE ended
EXIT_BROKEN_PIPE = 141
