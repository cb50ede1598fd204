"""Labels: score each answer against its accepted aliases (:mod:`.score`) and the one reader and
writer of ``labels.csv`` (:mod:`.io`).

    from truthtrace.labels import LabelConfig, label_store
    label_store("runs/a/traces", "runs/a/labels.csv", LabelConfig(rule="f1:0.5"))
"""

from truthtrace.labels.io import labels_beside, read_label_csv, read_labels, write_labels
from truthtrace.labels.score import LabelConfig, answer_span, label_store, normalize, score_answer

__all__ = ["LabelConfig", "answer_span", "label_store", "labels_beside", "normalize", "read_label_csv",
           "read_labels", "score_answer", "write_labels"]
