"""``T2PO/SearchQA-v0``: question answering with a search engine, Search-R1 protocol."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from t2po_gym.envs.searchqa.data import (
    DATA_ENV_VAR,
    QAData,
    load_corpus_jsonl,
    load_data_dir,
    load_qa,
)
from t2po_gym.envs.searchqa.metrics import exact_match, f1_score
from t2po_gym.envs.searchqa.records import QAItem
from t2po_gym.envs.searchqa.retrieval import (
    RETRIEVER_NAMES,
    format_passages,
    resolve_retriever,
    retrieve_passages,
)
from t2po_gym.envs.searchqa.world import WorldConfig, generate_world
from t2po_gym.protocol import ParsedResponse, Projection, parse_response, project_search_response, sanitize_text
from t2po_gym.search.base import Retriever
from t2po_gym.search.remote import RetrieverUnavailableError
from t2po_gym.text_env import ResponseSpec, TextEnv, Transition, option_index

__all__ = ["SearchQAEnv", "load_searchqa_data", "SEARCH_TAG", "ANSWER_TAG", "ACTION_FORMS"]

SEARCH_TAG, ANSWER_TAG = "search", "answer"
#: ``info["admissible_actions"]`` while an episode runs: the two response forms.
ACTION_FORMS = ("<search> query </search>", "<answer> answer </answer>")


def load_searchqa_data(
    *,
    data_dir: str | os.PathLike | None = None,
    corpus_path: str | os.PathLike | None = None,
    qa_path: str | os.PathLike | None = None,
    split: str = "train",
    world_passages: int = 20_000,
    world_questions: int = 5_000,
    world_seed: int = 0,
    need_corpus: bool = True,
) -> QAData:
    """The corpus and questions, loaded once per process (cached on the arguments).

    Precedence: explicit ``corpus_path``/``qa_path`` (the QA file becomes ``split``), then
    ``data_dir`` or ``$SEARCHQA_DATA`` (see :mod:`t2po_gym.envs.searchqa.data`), then the
    generated world of ``world_passages`` passages and ``world_questions`` questions.
    """
    def key(p):
        if p is None:
            return None
        p = Path(p).expanduser().resolve()
        return (str(p), p.stat().st_mtime_ns if p.exists() else 0)

    if corpus_path is not None or qa_path is not None:
        return _load_files(key(corpus_path), key(qa_path), split, need_corpus)
    data_dir = data_dir or os.environ.get(DATA_ENV_VAR) or None
    if data_dir is not None:
        return _load_dir(key(data_dir), need_corpus)
    return _load_world(int(world_passages), int(world_questions), int(world_seed))


@lru_cache(maxsize=8)
def _load_world(n_passages: int, n_questions: int, seed: int) -> QAData:
    cfg = WorldConfig(n_passages=n_passages, n_questions=n_questions, seed=seed)
    return generate_world(cfg)


@lru_cache(maxsize=8)
def _load_files(corpus_key, qa_key, split: str, need_corpus: bool) -> QAData:
    if qa_key is None:
        raise ValueError("corpus_path was given without qa_path: pass the QA file too")
    questions = load_qa(qa_key[0])
    if not questions:
        raise ValueError(f"{qa_key[0]}: the QA file holds no questions")
    docs = load_corpus_jsonl(corpus_key[0]) if corpus_key else []
    if not docs and need_corpus:
        if corpus_key:
            raise ValueError(f"{corpus_key[0]}: the corpus file holds no passages")
        raise ValueError("qa_path was given without corpus_path: pass the corpus JSONL too, "
                         "or use a remote retriever URL")
    return QAData(docs, {split: questions}, f"{corpus_key and corpus_key[0]} + {qa_key[0]}")


@lru_cache(maxsize=8)
def _load_dir(dir_key, need_corpus: bool) -> QAData:
    return load_data_dir(dir_key[0], need_corpus=need_corpus)


class SearchQAEnv(TextEnv):
    """Answer a question with a search engine, one tagged response per turn (Search-R1 protocol).

    ## Description
    Each episode asks one question. Every turn the agent writes a response holding one
    ``<think>...</think>`` block followed by exactly one of

    * ``<search>query</search>``: the env answers with ``<information>`` holding the top-k
      passages, each rendered as ``Doc i(Title: t) text``;
    * ``<answer>text</answer>``: ends the episode; the answer is scored.

    By default the questions and corpus come from a generated world of fictional entities
    (:mod:`t2po_gym.envs.searchqa.world`: single-hop, bridge, comparison and yes/no
    questions), so no model can answer from memory. Search-R1's own files load with
    ``data_dir`` (or ``$SEARCHQA_DATA``) or ``corpus_path`` + ``qa_path``.

    >>> import gymnasium as gym
    >>> env = gym.make("T2PO/SearchQA-v0", world_passages=2000, world_questions=200)
    >>> obs, info = env.reset(seed=123)
    >>> obs, r, term, trunc, info = env.step("<think>look it up</think><search>Paris</search>")

    ## Action Space
    ``UnicodeText``: the raw LLM response. With ``protocol="strict"`` and ``strict_format=True`` it must be
    exactly ``<think>...</think>`` then one ``<search>...</search>`` or
    ``<answer>...</answer>`` (whitespace around is fine). A response with neither tag, with
    both, with tags in the wrong order, with an empty query or answer, or with a command
    over 2048 characters is a no-op: the observation explains the problem,
    ``info["action_valid"]`` is False and the turn counts. With ``strict_format=False`` the
    think block is optional, but a ``<search>`` or ``<answer>`` block is still required.
    :meth:`oracle_action` returns a bare ``<search>...</search>`` or ``<answer>...</answer>``;
    prefix it with a think block (``"<think>...</think>" + env.oracle_action()``) to make a
    valid strict response.

    ``info["admissible_actions"]`` lists the two forms (:data:`ACTION_FORMS`), not concrete
    commands: any non-empty query or answer is admissible.

    ## Observation Space
    ``UnicodeText``. Mode ``"prompt"`` (default): the agent prompt with the question, the last
    ``history_length`` (observation, action) pairs and the format instruction. Mode ``"raw"``:
    the env text only: ``Question: ...`` after reset, ``<information>...</information>``
    after a search.

    ## Rewards
    On ``<answer>``: exact match after SQuAD normalisation (lowercase, no punctuation, no
    articles, single spaces) against any golden answer: 1.0 or 0.0. Every other step: 0.0.
    ``info["em"]`` and ``info["f1"]`` hold EM and the best token F1; ``info["task_score"]`` is
    F1 and ``info["won"]`` is EM == 1.

    ## Starting State
    A question drawn with ``np_random`` from the ``split``; ``reset(seed=s)`` always draws
    the same one. ``options={"question_index": i}`` or ``options={"qid": "test-7"}`` pick one.

    ## Episode End
    Terminated on a valid ``<answer>``. Truncated after ``max_turns`` (default 4) turns, and at
    once when a remote retriever cannot be reached (``info["retriever_error"]`` says why).

    ## Arguments
    * ``split``: ``"train"`` or ``"test"`` (or any split the data has).
    * ``retriever``: ``"bm25"`` (tantivy, default), ``"lucene"`` (pyserini), ``"dense"``
      (MiniLM), an ``http://host:port/retrieve`` URL, or a ``Retriever`` instance.
    * ``topk``: passages per search (default 3).
    * ``data_dir``, ``corpus_path``, ``qa_path``: Search-R1 files instead of the generated world.
    * ``world_passages``, ``world_questions``, ``world_seed``: size and seed of the generated world.
    * ``max_passage_chars``: each passage shown is cut to this many characters.
    * ``protocol``: ``"released"`` (default) plays a response as the released T2PO code does
      (``env_package/search/projection.py``): no ``<think>`` needed; the first ``<search>``
      (else ``<answer>``) block is executed even when the response is invalid (both tags, or a
      tag twice); a response with neither does nothing and the observation is empty; the prompt
      shows the last 4 steps as ``Step k:<search>q</search> <information>...</information>``.
      GiGPO groups Search anchors by similarity (threshold :attr:`anchor_similarity` = 0.9 in
      the released recipe). ``"strict"``: the rules of "Action Space" above.
    * ``prompt_template``: see :class:`~t2po_gym.text_env.TextEnv`.
    * ``observation_mode``, ``history_length`` (default: 4 released, 3 strict), ``strict_format``,
      ``max_turns``, ``render_mode``: as for every :class:`~t2po_gym.text_env.TextEnv`.

    ## Vectorized environment
    ``gym.make_vec("T2PO/SearchQA-v0", num_envs=8)`` works; the corpus and the retriever index
    are loaded once per process and shared by all envs (and ``async`` workers each hold one).
    Envs reset with the same seed get the same question.
    """

    default_max_turns: ClassVar[int] = 4
    action_tag: ClassVar[str] = SEARCH_TAG
    # Search-R1's protocol: generation stops after a closed <search> or <answer>; TTI closes
    # the thought alone (as the released processor forces </think> alone,
    # recipe/search_agent/workers/rollout/vllm_rollout_spmd.py:L215) and the model picks the tag.
    response_spec: ClassVar[ResponseSpec] = ResponseSpec(
        action_tags=(SEARCH_TAG, ANSWER_TAG), stop=(f"</{SEARCH_TAG}>", f"</{ANSWER_TAG}>"), forced_text="</think>\n")
    prompt_lists_actions: ClassVar[bool] = False
    strict_history_length: ClassVar[int] = 3
    released_history_length: ClassVar[int] = 4  # examples/search_agent_trainer/train_search.sh: env.history_length=4
    released_needs_admissible: ClassVar[bool] = False
    anchor_similarity: ClassVar[float | None] = 0.9  # train_search.sh: similarity_thresh=0.9
    released_prompt: ClassVar[tuple[str, str]] = (
        "You are an expert agent answering the given question step by step.\n"
        "Your question: {task_description}\n\n"
        "Now it's your turn to respond for the current step. First reason; this reasoning MUST be "
        "enclosed within <think> </think> tags. Then do only one of the following:\n"
        "(1) if some knowledge is missing, call the search engine with <search> your query </search>;\n"
        "(2) if you can answer confidently, give the final answer within <answer> </answer>, "
        "without explanations, e.g. <answer>Lisbon</answer>.\n",
        "You are an expert agent answering the given question step by step.\n"
        "Your question: {task_description}\n\n"
        "Before this step you have taken {step_count} step(s). The history below shows your past "
        "search queries inside <search> </search> and what the search engine returned inside "
        "<information> </information>. History:\n{memory_context}\n\n"
        "Now it's your turn to respond for the current step. First reason; this reasoning MUST be "
        "enclosed within <think> </think> tags. Then do only one of the following:\n"
        "(1) if some knowledge is missing, call the search engine with <search> your query </search>;\n"
        "(2) if you can answer confidently, give the final answer within <answer> </answer>, "
        "without explanations, e.g. <answer>Lisbon</answer>.\n",
    )
    prompt_intro: ClassVar[str] = (
        "You answer questions with the help of a search engine over an encyclopedia. "
        "Rely on what the search returns rather than on memory."
    )
    prompt_instruction: ClassVar[str] = (
        "Now it is your turn. Reason first inside <think> </think> every time you get new "
        "information. If some knowledge is missing, write one search query inside "
        "<search> </search>; the top results come back inside <information> </information>. "
        "When you can answer, write only the answer inside <answer> </answer>, "
        "for example <answer> Lisbon </answer>. Each response holds one <think> block followed "
        "by exactly one <search> or <answer> block; you have {max_turns} turns in all."
    )

    def __init__(
        self,
        *,
        split: str = "train",
        retriever: str | Retriever = "bm25",
        topk: int = 3,
        data_dir: str | os.PathLike | None = None,
        corpus_path: str | os.PathLike | None = None,
        qa_path: str | os.PathLike | None = None,
        world_passages: int = 20_000,
        world_questions: int = 5_000,
        world_seed: int = 0,
        max_passage_chars: int = 1500,
        observation_mode: str = "prompt",
        history_length: int | None = None,
        strict_format: bool = True,
        max_turns: int | None = None,
        render_mode: str | None = None,
        protocol: str = "released",
        prompt_template: str | tuple[str, str] | None = None,
    ):
        super().__init__(observation_mode=observation_mode, history_length=history_length,
                         strict_format=strict_format, max_turns=max_turns, render_mode=render_mode,
                         protocol=protocol, prompt_template=prompt_template)
        if int(topk) < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        remote = isinstance(retriever, str) and retriever.startswith(("http://", "https://"))
        self.data = load_searchqa_data(
            data_dir=data_dir, corpus_path=corpus_path, qa_path=qa_path, split=split,
            world_passages=world_passages, world_questions=world_questions, world_seed=world_seed,
            need_corpus=not remote and not isinstance(retriever, Retriever))
        self.split = split
        self._questions = self.data.questions(split)
        self._retriever_spec = retriever
        self._retriever: Retriever | None = retriever if isinstance(retriever, Retriever) else None
        if isinstance(retriever, str) and not remote:
            if retriever not in RETRIEVER_NAMES:
                raise ValueError(f"unknown retriever {retriever!r}; choose one of {RETRIEVER_NAMES} "
                                 "or an http:// URL")
        self.topk = int(topk)
        self.max_passage_chars = int(max_passage_chars)
        self.prompt_instruction = type(self).prompt_instruction.format(max_turns=self.max_turns)
        self._item: QAItem | None = None
        self._n_searches = 0
        self._em = 0.0
        self._f1 = 0.0
        self._retriever_error = ""

    # -------------------------------------------------------------- retriever
    @property
    def retriever(self) -> Retriever:
        """The (process-wide, shared) retriever; built or opened on first use."""
        if self._retriever is None:
            self._retriever = resolve_retriever(self._retriever_spec, self.data)
        return self._retriever

    @property
    def question(self) -> QAItem:
        """The question of the current episode."""
        if self._item is None:
            raise RuntimeError("call reset() first")
        return self._item

    # ------------------------------------------------------------------ hooks
    def _reset_game(self, seed: int | None, options: dict[str, Any]) -> tuple[str, str]:
        qs = self._questions
        if "qid" in options:
            match = [q for q in qs if q.qid == options["qid"]]
            if not match:
                raise ValueError(f"no question with qid {options['qid']!r} in split {self.split!r}")
            item = match[0]
        elif "question_index" in options:
            item = qs[option_index(options["question_index"], "question_index", len(qs))]
        else:
            item = qs[int(self.np_random.integers(len(qs)))]
        self._item = item
        self._n_searches = 0
        self._em = self._f1 = 0.0
        self._retriever_error = ""
        return f"Question: {item.question}", item.question

    def _admissible_actions(self) -> list[str]:
        # Free text: any query or answer is admissible. These two entries describe the forms
        # (and give a random agent something valid to do); they are not shown in the prompt.
        return list(ACTION_FORMS)

    def _parse(self, response: str) -> ParsedResponse:
        has_s = f"<{SEARCH_TAG}>" in response or f"</{SEARCH_TAG}>" in response
        has_a = f"<{ANSWER_TAG}>" in response or f"</{ANSWER_TAG}>" in response
        if has_s and has_a:
            return ParsedResponse(None, None, False,
                                  "the response holds both <search> and <answer>; write exactly one of them")
        if not has_s and not has_a:
            return ParsedResponse(None, None, False,
                                  "no <search>...</search> or <answer>...</answer> block")
        tag = SEARCH_TAG if has_s else ANSWER_TAG
        p = parse_response(response, strict=self.strict_format, action_tag=tag)
        if p.action is None:
            return p
        return ParsedResponse(f"<{tag}>{p.action}</{tag}>", p.think, p.format_valid, p.error)

    # ------------------------------------------------------------ released protocol
    def _project(self, response: str) -> Projection:
        return project_search_response(response)

    def _released_reply(self, command: str) -> Transition:
        # nothing to search for: the released env returns no observation (search/envs.py:L128-129)
        return Transition("")

    def _released_history_text(self, first_step: int, window: list[tuple[str, str, str]]) -> str:
        """``SearchMemory.fetch`` (``agent_system/memory/memory.py``): ``Step k:<action> <information>``
        per step, the observation *after* the action, entries separated by a blank line."""
        return "\n".join(f"Step {k}:{act} {after}\n" for k, (_b, act, after) in enumerate(window, start=first_step))

    @staticmethod
    def _split_command(command: str) -> tuple[str, str]:
        tag = SEARCH_TAG if command.startswith(f"<{SEARCH_TAG}>") else ANSWER_TAG
        return tag, command[len(tag) + 2 : -(len(tag) + 3)].strip()

    def _check_command(self, command: str) -> str | None:
        if not command.startswith((f"<{SEARCH_TAG}>", f"<{ANSWER_TAG}>")):
            return "no <search> or <answer> block"
        tag, body = self._split_command(command)
        if not body:
            return f"empty {tag}: write the {'query' if tag == SEARCH_TAG else 'answer'} inside <{tag}> </{tag}>"
        return None

    def _apply_command(self, command: str) -> Transition:
        tag, body = self._split_command(command)
        item = self.question
        if tag == ANSWER_TAG:
            self._em = exact_match(body, item.golden_answers)
            self._f1 = f1_score(body, item.golden_answers)
            return Transition(
                observation=f"Your answer: {sanitize_text(body, 500)}. The episode is over.",
                reward=self._em, terminated=True, won=self._em == 1.0, task_score=self._f1)
        try:
            docs = retrieve_passages(self.retriever, self.data, body, self.topk)
        except RetrieverUnavailableError as e:
            self._retriever_error = str(e)
            return Transition(observation=f"Search failed: {e}. The episode is truncated.",
                              task_score=self._f1)
        self._n_searches += 1
        info = format_passages(docs, self.max_passage_chars)
        return Transition(observation=f"<information>{info}</information>", task_score=self._f1)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        if self._retriever_error and not terminated:
            truncated = True
            self._ended = True
            info["admissible_actions"] = []
        return obs, reward, terminated, truncated, info

    def _info(self, *, format_valid: bool, action_valid: bool) -> dict[str, Any]:
        info = super()._info(format_valid=format_valid, action_valid=action_valid)
        info["em"] = float(self._em)
        info["f1"] = float(self._f1)
        if self._retriever_error:
            info["retriever_error"] = self._retriever_error
        return info

    def oracle_action(self) -> str | None:
        """The oracle's next command: one ``<search>`` per supporting passage (its hop query), then
        ``<answer>`` with the canonical golden answer (earlier when only one turn is left).

        Returns a bare tagged block; wrap it as ``"<think>...</think>" + block`` for a strict response.
        For loaded data sets without hop annotations it searches the question once.
        """
        if self._item is None or self._ended:
            return None
        item = self._item
        hops = item.hop_queries or (item.question,)
        turns_left = self.max_turns - self._turn
        if self._n_searches < len(hops) and turns_left > 1:
            return f"<{SEARCH_TAG}>{hops[self._n_searches]}</{SEARCH_TAG}>"
        return f"<{ANSWER_TAG}>{item.golden_answers[0]}</{ANSWER_TAG}>"
