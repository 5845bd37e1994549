"""Sanitizer micro-benchmark: the cost of preparing one HTML body for the reader.

    .venv/bin/python bench/sanitize_bench.py [--copies N] [--rounds R]

Measures, in the same run and on the same input:

- posta: posta.mail.sanitize.sanitize_html (nh3 with Posta's allowlist, its
  attribute filter and the CSS cleaning of styles and <style> blocks), remote
  content blocked and then allowed through a proxy;
- reference: a bare `nh3.clean` with nh3's defaults on the same HTML.

Inputs: a newsletter-like body (tables, inline styles, a <style> block, images,
links) repeated N times, and the whole hostile corpus of tests/corpus/hostile_html.
Prints the best of R rounds (CPU time) in µs per body and the ratio to the
reference. Never part of the test run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import nh3  # noqa: E402

from posta.mail.sanitize import sanitize_html  # noqa: E402
from tests import hostile_corpus  # noqa: E402

NEWSLETTER_ROW = """
<tr><td class="card" style="padding:16px 24px;background-color:#ffffff;
 border-bottom:1px solid #e5e5e5;font-family:Helvetica,Arial,sans-serif;font-size:15px;
 line-height:22px;color:#333333">
 <img src="https://news.example.test/img/product.jpg" width="560" alt="Product"
  style="display:block;width:100%;max-width:560px;height:auto;border:0">
 <h2 style="margin:12px 0 4px;font-size:20px">Spring offers</h2>
 <p style="margin:0 0 12px">Discover the new collection, with <b>free shipping</b> until
 Sunday. <a href="https://news.example.test/c?id=1" style="color:#0a66c2">Read more</a></p>
 <table role="presentation" cellpadding="0" cellspacing="0"><tr>
 <td background="https://news.example.test/img/button.png" bgcolor="#0a66c2"
  style="border-radius:4px;background:url('https://news.example.test/img/bg.png') #0a66c2">
 <a href="https://news.example.test/buy" style="display:inline-block;padding:10px 18px;
  color:#ffffff;text-decoration:none">Buy now</a></td></tr></table></td></tr>
"""
NEWSLETTER_HEAD = """<html><head><style type="text/css">
body{margin:0;padding:0} .card{border-radius:6px}
@media only screen and (max-width:600px){.card{padding:8px!important}
 .hero{background-image:url(https://news.example.test/img/hero-small.jpg)!important}}
</style></head><body><table width="100%" class="hero" style="max-width:600px;margin:0 auto">"""


def newsletter(copies: int) -> str:
    return NEWSLETTER_HEAD + NEWSLETTER_ROW * copies + "</table></body></html>"


def _best(fn: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _proxy(url: str) -> str:
    return "https://posta.example/mail/img/1/2/?u=" + url


def run(bodies: list[str], rounds: int, label: str) -> None:
    def blocked() -> None:
        for body in bodies:
            sanitize_html(body, images={}, proxy=None)

    def allowed() -> None:
        for body in bodies:
            sanitize_html(body, images={}, proxy=_proxy)

    def reference() -> None:
        for body in bodies:
            nh3.clean(body)

    ref = _best(reference, rounds)
    for name, fn in (("blocked", blocked), ("allowed", allowed)):
        took = _best(fn, rounds)
        per = took / len(bodies) * 1e6
        print(
            f"{label:<24} posta {name:<8} {per:10.1f} µs/body   "
            f"reference {ref / len(bodies) * 1e6:10.1f} µs/body   ratio {took / ref:5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20, help="newsletter rows per body")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    news = newsletter(args.copies)
    print(f"newsletter: {len(news)} characters; corpus: ", end="")
    corpus = [payload for _, payload in hostile_corpus.load()]
    print(f"{len(corpus)} vectors")
    run([news] * 50, args.rounds, f"newsletter x{args.copies}")
    run(corpus, args.rounds, "hostile corpus")


if __name__ == "__main__":
    main()
