"""Code tasks: the task fields a code task uses, pulling code out of a candidate, running it against tests
in a sandboxed subprocess (`sandbox`), and HumanEval as tasks (`humaneval`)."""
