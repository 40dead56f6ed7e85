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
    # The reliance on sensitive features and proxies: the explanation's share and its interval.
    explained = card["explanation"]
    bounds = explained.get("proxy_share_interval")
    assert bounds, "Adult's proxies were measured: the share has its interval"
    spread = f" ({bounds[0]:.1%}–{bounds[1]:.1%}: the spread of explaining a sample of rows, not every row)"
    assert (
        f"Reliance on sensitive features and their proxies: {explained['proxy_share']:.1%} of attribution"
        f"{spread if bounds else ''} (a model can treat"
    ) in text
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


def _html_section(page, title):
    """The tables (header, rows of cell text) and figure captions of one ``<h2>`` section of a page."""
    import html
    from html.parser import HTMLParser

    start = page.index(f"<h2>{html.escape(title)}</h2>")
    end = page.find("<h2>", start + 1)

    class Reader(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.captions, self.cell, self.row, self.caption = [], [], None, None, None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr":
                self.row = []
                self.tables[-1].append(self.row)
            elif tag in ("td", "th"):
                self.cell = []
            elif tag == "figcaption":
                self.caption = []

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.row.append("".join(self.cell).strip())
                self.cell = None
            elif tag == "figcaption":
                self.captions.append("".join(self.caption))
                self.caption = None

        def handle_data(self, data):
            for part in (self.cell, self.caption):
                if part is not None:
                    part.append(data)

    reader = Reader()
    reader.feed(page[start : end if end != -1 else len(page)])
    return reader.tables, reader.captions


def _table(tables, column):
    """The rows of the first table with a column headed ``column`` (header row left out)."""
    return next(t[1:] for t in tables if t and column in t[0])


@pytest.mark.parametrize("which", ["blocked_run", "drift_run"])
def test_the_validation_reports_confusion_cells_and_roc_curves_equal_their_json(which, request):
    import json
    import math

    run = request.getfixturevalue(which)
    validation = run.out / "validation"
    report = json.loads((validation / "validation.json").read_text())
    page = (validation / "validation.html").read_text()
    (tn, fp), (fn, tp) = report["confusion_matrix"]
    assert tn + fp + fn + tp == report["rows"]
    overall = _table(_html_section(page, "Overall performance")[0], "confusion matrix (rows)")
    assert overall == [
        ["actual negative", str(tn), str(fp), str(tn + fp)],
        ["actual positive", str(fn), str(tp), str(fn + tp)],
        ["total", str(tn + fn), str(fp + tp), str(report["rows"])],
    ]
    assert report["overall"]["accuracy"] == pytest.approx((tn + tp) / report["rows"])
    for f in report["fairness"]:
        tables, captions = _html_section(page, f"By {f['attribute']}")
        table = {r[0]: r for r in _table(tables, "true negatives")}
        assert set(table) == {g["group"] for g in f["groups"]}
        # Each attribute's groups partition the test rows: their cells add up to the overall matrix.
        assert [sum(g["cells"][i] for g in f["groups"]) for i in range(4)] == [tn, fp, fn, tp]
        for g in f["groups"]:
            n_tn, n_fp, n_fn, n_tp = g["cells"]
            assert n_tn + n_fp + n_fn + n_tp == g["count"], g["group"]
            assert table[g["group"]] == [g["group"], *map(str, (g["count"], n_tn, n_fp, n_fn, n_tp, n_fn + n_tp,
                                                              n_tn + n_fp, n_fp + n_tp))]  # fmt: skip
            expected = {
                "accuracy": (n_tn + n_tp) / g["count"],
                "selection_rate": (n_fp + n_tp) / g["count"],
                "true_positive_rate": n_tp / (n_tp + n_fn) if n_tp + n_fn else math.nan,
                "false_positive_rate": n_fp / (n_fp + n_tn) if n_fp + n_tn else math.nan,
                "precision": n_tp / (n_tp + n_fp) if n_tp + n_fp else math.nan,
            }
            for metric, value in expected.items():
                got = g[metric]
                assert (math.isnan(value) and (got is None or got != got)) or got == pytest.approx(value), metric
            # A curve only for a group whose ROC AUC is judged; bounded, monotone, from (0, 0) to (1, 1).
            judged = not g["too_small"] and "roc_auc" not in g["unjudged"]
            assert bool(g["roc"]) == judged, g["group"]
            if judged:
                fpr, tpr = g["roc"]["fpr"], g["roc"]["tpr"]
                assert 2 <= len(fpr) == len(tpr) == len(g["roc"]["threshold"]) <= 51
                assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
                assert fpr == sorted(fpr) and tpr == sorted(tpr)
                assert f"{g['group']} (AUC {g['roc_auc']:.3f})" in page
        # The ROC chart's caption names every group left out, and only those.
        caption = next(c for c in captions if c.startswith(f"{f['attribute']}: ROC curve of each group"))
        left_out = re.search(r"Left out, too few cases to judge: (.*)\.$", caption)
        named = [item.rsplit(" (", 1)[0] for item in left_out.group(1).split("; ")] if left_out else []
        assert named == [g["group"] for g in f["groups"] if not g["roc"]]
