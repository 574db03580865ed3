"""The typer command tree; command modules attach themselves to these groups.

A group named without a subcommand (``bert-tasks``, ``bert-tasks finetune``) prints its help
and exits 0, instead of click's "missing command" usage error.
"""

import typer

CONTEXT = {"help_option_names": ["-h", "--help"]}


def show_help_without_subcommand(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        ctx.get_help()  # typer's rich help prints itself
        raise typer.Exit(0)


def group(help: str) -> typer.Typer:
    sub = typer.Typer(help=help, context_settings=CONTEXT)
    sub.callback(invoke_without_command=True)(show_help_without_subcommand)
    return sub


app = typer.Typer(
    name="bert-tasks",
    help="Fine-tune and pretrain BERT on a from-scratch encoder that matches transformers. Works offline.\n\n"
         "Add --debug anywhere to see tracebacks.",
    pretty_exceptions_enable=False,
    add_completion=False,  # main() runs the command tree itself, so click's completion hook never runs
    context_settings=CONTEXT,
)
finetune_app = group("Fine-tune a model on a task.")
eval_app = group("Evaluate a fine-tuned model folder.")
predict_app = group("Predict with a fine-tuned model folder.")
pretrain_app = group("Pretrain a BERT from a text corpus.")
recipes_app = group("List, show and copy the packaged recipes.")

app.add_typer(finetune_app, name="finetune")
app.add_typer(eval_app, name="eval")
app.add_typer(predict_app, name="predict")
app.add_typer(pretrain_app, name="pretrain")
app.add_typer(recipes_app, name="recipes")
