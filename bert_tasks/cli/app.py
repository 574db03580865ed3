"""The typer command tree; command modules attach themselves to these groups."""

import typer

CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="bert-tasks",
    help="Fine-tune and pretrain BERT on a from-scratch encoder that matches transformers. Works offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
)
finetune_app = typer.Typer(help="Fine-tune a model on a task.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate a fine-tuned model folder.", no_args_is_help=True)
predict_app = typer.Typer(help="Predict with a fine-tuned model folder.", no_args_is_help=True)
pretrain_app = typer.Typer(help="Pretrain a BERT from a text corpus.", no_args_is_help=True)
recipes_app = typer.Typer(help="List, show and copy the packaged recipes.", no_args_is_help=True)

app.add_typer(finetune_app, name="finetune")
app.add_typer(eval_app, name="eval")
app.add_typer(predict_app, name="predict")
app.add_typer(pretrain_app, name="pretrain")
app.add_typer(recipes_app, name="recipes")
