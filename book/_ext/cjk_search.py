"""Sphinx extension: the site search finds Chinese terms as well as English ones.

Sphinx's English index splits text at non-word characters, and a run of Chinese characters has
none: "多头注意力机制的计算过程" would be indexed as one "word" that no query matches. Sphinx's own
Chinese language needs ``jieba`` and a dictionary, and the browser side does not segment the query
the same way. This extension registers a search language ``en_cjk`` (set
``html_search_language: en_cjk``) that keeps the English splitter, stemmer and stop words for
Latin text and indexes every run of CJK characters by its single characters and its overlapping
character pairs (bigrams). The page's ``splitQuery`` cuts a query's CJK runs into the same pairs,
and Sphinx's search keeps only pages that contain *every* query term, so a query such as
多头注意力 (pairs 多头, 头注, 注意, 意力) finds the pages that contain the phrase. A one-character
query is looked up as that character.
"""

from __future__ import annotations

import re

from sphinx.application import Sphinx
from sphinx.search import languages
from sphinx.search.en import SearchEnglish

LANGUAGE = "en_cjk"
# CJK ideographs (with extension A and compatibility ideographs), kana and Hangul syllables.
CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_RUN = re.compile(f"[{CJK_CLASS}]+")


def cjk_terms(run: str) -> list[str]:
    """The index terms of one CJK run: each character and each pair of neighbours."""
    return [*run, *(run[i : i + 2] for i in range(len(run) - 1))]


def query_terms(run: str) -> list[str]:
    """The terms a query's CJK run is searched by: its pairs, or the character itself."""
    return [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]


# Same rule as query_terms(), for the browser: splitQuery() of searchtools.js, with CJK runs cut
# into pairs. It is defined in language_data.js, which the theme loads before searchtools.js.
JS_SPLITTER = f"""
var splitQuery = (query) => {{
  const cjk = /[{CJK_CLASS}]+/gu;
  const terms = [];
  query.split(/[^\\p{{Letter}}\\p{{Number}}_\\p{{Emoji_Presentation}}]+/gu).forEach((word) => {{
    if (!word) return;
    word.split(cjk).forEach((latin) => {{ if (latin) terms.push(latin); }});
    (word.match(cjk) || []).forEach((run) => {{
      if (run.length === 1) terms.push(run);
      for (let i = 0; i + 1 < run.length; i++) terms.push(run.slice(i, i + 2));
    }});
  }});
  return terms;
}};
"""


class SearchEnglishCJK(SearchEnglish):
    """English search (Porter stemmer, stop words) plus CJK character and bigram terms."""

    lang = "en"
    language_name = "English with CJK n-grams"
    js_splitter_code = JS_SPLITTER

    def split(self, input: str) -> list[str]:  # the name of Sphinx's parameter
        latin = super().split(_CJK_RUN.sub(" ", input))
        return latin + [term for run in _CJK_RUN.findall(input) for term in cjk_terms(run)]

    def word_filter(self, word: str) -> bool:
        # Sphinx drops short words of Latin text only as stop words; keep one-character CJK terms
        return bool(_CJK_RUN.fullmatch(word)) or super().word_filter(word)


def setup(app: Sphinx) -> dict:
    languages[LANGUAGE] = SearchEnglishCJK
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
