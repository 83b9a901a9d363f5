"""One row of each downstream task's set, with the field types pyarrow gives for the real files."""

from __future__ import annotations

ROWS = {  # one row of each set, with the field types pyarrow gives for the real files
    "hellaswag": {"activity_label": "Roof shingle removal", "ctx_a": "A man is on a roof.", "ctx_b": "he",
                  "endings": ["is [title] skiing.", "starts  pulling up roofing."], "label": "1"},
    "piqa": {"goal": "Open a jar", "sol1": "Twist the lid.", "sol2": "Eat the lid.", "label": 0},
    "arc_easy": {"question": "Which is newest?", "choices": {"text": ["phone", "cart"], "label": ["A", "B"]},
                 "answerKey": "A"},
    "arc_challenge": {"question": "Q?", "choices": {"text": ["x", "y", "z"], "label": ["1", "2", "3"]},
                      "answerKey": "3"},
    "openbookqa": {"question_stem": "Sharks live", "choices": {"text": ["deep", "high"], "label": ["A", "B"]},
                   "answerKey": "B"},
    "sciq": {"question": "Who?", "distractor1": "a", "distractor2": "b", "distractor3": "c",
             "correct_answer": "darwin", "support": "  Evolution."},
    "winogrande": {"sentence": "Sarah beat Maria so _ won.", "option1": "Sarah", "option2": "Maria", "answer": "1"},
    "boolq": {"question": "is it", "passage": "It is.", "answer": True},
    "copa": {"premise": "The man turned on the tap.", "choice1": "Water ran.", "choice2": "It sang.",
             "question": "effect", "label": 0},
    "social_iqa": {"context": "Tracy left.", "question": "Why?", "answerA": "a", "answerB": "b", "answerC": "c",
                   "label": "3"},
    "commonsense_qa": {"question": "Where?", "choices": {"label": ["A", "B"], "text": ["bank", "mall"]},
                       "answerKey": "B"},
}
