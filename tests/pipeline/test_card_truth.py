"""Every statement of the card is true: read the Markdown card a run wrote, and check each sentence
and figure against the JSON it came from (the card's own JSON and the stage reports in it)."""

import re

import pytest

pytestmark = pytest.mark.slow


def _card(run):
    import json

    production = run.out / "production"
    return (production / "model_card.md").read_text(), json.loads((production / "model_card.json").read_text())


def _cell(value, interval):
    return f"{value:.3f} ({interval[0]:.3f}-{interval[1]:.3f})" if interval else f"{value:.3f}"


def _rows(text, header):
    """The rows of the Markdown table whose header line starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    out = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        out.append([c.strip() for c in line.strip("|").split(" | ")])
    return out


@pytest.mark.parametrize("which", ["blocked_run", "drift_run"])
def test_every_figure_and_sentence_of_the_card_equals_its_source(which, request):
    run = request.getfixturevalue(which)
    text, card = _card(run)
    status, training, validation = card["status"], card["training"], card["validation"]
    blocked = status == "failed"
    # The headline names the decision as the verdict has it, and says "every gate passed" only then.
    label = {"passed": "ELIGIBLE", "warning": "ELIGIBLE WITH WARNINGS"}.get(status, "BLOCKED")
    assert f"**Verdict: {label}** — " in text
    assert ("every gate passed" in text) == (status == "passed")
    # One line per gate, with the status the production gate recorded.
    gates = _rows(text, "| gate | status |")
    assert [(g[0], g[1]) for g in gates] == [
        (f["subject"], f["status"].upper().replace("_", " ")) for f in card["findings"]
    ]
    # Conditional sentences only where their condition holds.
    assert ("any use while this card is BLOCKED" in text) == blocked
    assert ("Do not deploy" in text) == blocked and ("kfp-rai models approve" in text) == (not blocked)
    # The training data sentence: rows, target, label, base rate, seed.
    assert (
        f"{training['rows']} training rows; target `{training['target']}`, positive label "
        f"`{training['positive_label']}` (base rate {training['positive_rate']:.3f}). Seed {training['seed']}."
    ) in text
    assert f"{validation['rows']} held-out rows of the same data set" in text
    # Mitigation only as it ran: "none", or the method with its constraint.
    ran = training.get("mitigation", "none")
    said = "none" if ran == "none" else f"{ran} ({training.get('mitigation_constraint') or 'no constraint'})"
    assert f"| fairness mitigation | {said} |" in text
    # Overall figures with their intervals.
    overall, intervals = validation["overall"], validation["overall_intervals"]
    assert (
        f"Overall: accuracy {_cell(overall['accuracy'], intervals.get('accuracy'))}, ROC AUC "
        f"{_cell(overall['roc_auc'], intervals.get('roc_auc'))}."
    ) in text
    # Every group's every figure, as the validation report has it (or why it is not judged).
    table = {(r[0], r[1]): r for r in _rows(text, "| attribute | group | rows |")}
    checked = 0
    for f in validation["fairness"]:
        for g in f["groups"]:
            row = table[(f["attribute"], g["group"])]
            assert row[2] == str(g["count"])
            for cell, m in zip(row[3:8], ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate",
                                          "precision"), strict=True):  # fmt: skip
                if g.get("too_small"):
                    assert cell == "too small to judge"
                    continue
                value = g.get(m)
                if value is None or value != value:  # NaN: undefined
                    assert cell == "—"
                    continue
                expected = _cell(value, g["intervals"].get(m))
                why = g.get("unjudged", {}).get(m)
                assert cell == (f"{expected}, not judged: {why}" if why else expected), (g["group"], m, cell)
                checked += 1
    assert checked > 50
    # Every policy exception is quoted with the reason its policy wrote, and none is invented.
    reasons = {r.get("policy", {}).get("exception_reason") for r in (card["representativeness"], validation,
                                                                      card["explanation"])} - {None, ""}  # fmt: skip
    for reason in reasons:
        assert f"Written reason: “{reason}”" in text
    assert ("No gate was relaxed" in text) == (not reasons)
    # Every finding of discovery and validation is on the card, with its status.
    for report in (card["datasheet"] or card["representativeness"], validation):
        for finding in report["findings"]:
            assert re.search(re.escape(f"| {finding['rule']} | {finding['subject']} |"), text), finding["rule"]
