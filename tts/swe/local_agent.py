"""The embedded model (SmolLM2-135M on llama.cpp) as mini-swe-agent's model: its config and short templates."""

LOCAL_CONFIG_SPEC = "swebench_backticks.yaml"
"""mini-swe-agent's text-based config: SmolLM2 on llama.cpp has no reliable tool calls, ```blocks work."""
LOCAL_STEP_LIMIT = 8
LOCAL_REPLY_TOKENS = 256
LOCAL_AGENT = {
    # SmolLM2's context is 2048 tokens: short templates, and no step may flood it.
    "system_template": "You fix bugs in a git repository by running one shell command per reply.\n"
                       "Reply with a short THOUGHT and exactly one command in a ```mswea_bash_command block, "
                       "like this:\nTHOUGHT: I look at the file first.\n```mswea_bash_command\ncat calc.py\n```",
    "instance_template": "<pr_description>\n{{task}}\n</pr_description>\n"
                         "Edit the source files (not the tests) in /testbed to fix it. When done, reply with:\n"
                         "```mswea_bash_command\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git diff\n```",
}
LOCAL_MODEL = {
    "observation_template": "<returncode>{{output.returncode}}</returncode>\n<output>\n"
                            "{{ output.output[-600:] }}</output>",
    "format_error_template": "Reply with exactly one ```mswea_bash_command block (found {{actions|length}}).",
    # a 135M model often writes ```bash or a bare ``` block: take those too
    "action_regex": r"```(?:mswea_bash_command|bash|sh|shell)?[ \t]*\n(.*?)\n```",
}
