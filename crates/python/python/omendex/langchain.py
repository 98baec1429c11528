"""A LangChain ``VectorStore`` over an ``omendex.Index``: ``pip install 'omendex[langchain]'``.

>>> from langchain_core.embeddings import DeterministicFakeEmbedding
>>> from omendex.langchain import OmendexVectorStore
>>> store = OmendexVectorStore(DeterministicFakeEmbedding(size=8))
>>> ids = store.add_texts(["foo", "bar"], ids=["a", "b"])
>>> [d.id for d in store.similarity_search("bar", k=1)]
['b']

Documents are kept beside the index under their string ids (given, or new UUIDs); each
document's vector is in the index under an integer id of its own. Adding a document under an
id already held replaces it (its old vector is deleted), so adds by id are idempotent.
Deleting an id that is not held is not an error, as the LangChain interface asks.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from omendex import Index

__all__ = ["OmendexVectorStore"]


class OmendexVectorStore(VectorStore):
    """Documents searched by their embeddings in an ``omendex.Index``.

    ``embedding``: the LangChain embeddings model. ``metric``: ``"cosine"`` (the default),
    ``"l2"`` or ``"ip"``; the index (``m``, ``ef_construction``, ``ef_search``, ``seed``,
    ``quantization`` as for ``omendex.Index``) is made at the first add, from the embeddings'
    dimension. Scores from ``similarity_search_with_score`` are the index's distances
    (smaller is nearer); ``similarity_search_with_relevance_scores`` maps them to [0, 1].
    """

    def __init__(self, embedding: Embeddings, *, metric: str = "cosine", **index_options: Any) -> None:
        self._embedding = embedding
        self._metric = metric
        self._options = index_options
        self._index: Optional[Index] = None
        self._docs: dict[str, Document] = {}
        self._key_of: dict[str, int] = {}
        self._name_of: dict[int, str] = {}
        if metric not in ("cosine", "l2", "ip"):
            raise ValueError(f"metric must be 'cosine', 'l2' or 'ip', not {metric!r}")

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    @property
    def index(self) -> Optional[Index]:
        """The index (``None`` until the first add)."""
        return self._index

    def __len__(self) -> int:
        return len(self._docs)

    def _index_for(self, dim: int) -> Index:
        if self._index is None:
            self._index = Index(dim, self._metric, **self._options)
        return self._index

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Optional[list[dict[str, Any]]] = None,
        *,
        ids: Optional[list[str]] = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embeds ``texts`` and adds them (with ``metadatas``) under ``ids`` (a ``None`` id, or
        none given: a new UUID); an id already held is replaced. Returns the ids."""
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"{len(metadatas)} metadatas for {len(texts)} texts")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        given: list[Optional[str]] = list(ids) if ids is not None else [None] * len(texts)
        names = [str(i) if i is not None else str(uuid.uuid4()) for i in given]
        if len(set(names)) != len(names):
            raise ValueError("an id appears twice in one add")
        if not texts:
            return []
        vectors = np.asarray(self._embedding.embed_documents(texts), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(f"the embeddings gave shape {vectors.shape} for {len(texts)} texts")
        index = self._index_for(vectors.shape[1])
        # Added first (the index checks every vector and adds all or none), then the replaced
        # documents' old vectors deleted: a failed add leaves the store as it was.
        keys = index.add(vectors)
        replaced = [self._key_of[n] for n in names if n in self._key_of]
        if replaced:
            index.delete(replaced)
        metas: list[Optional[dict[str, Any]]] = list(metadatas) if metadatas is not None else [None] * len(texts)
        for name, key, text, meta in zip(names, keys.tolist(), texts, metas):
            old = self._key_of.pop(name, None)
            if old is not None:
                del self._name_of[old]
            self._key_of[name] = key
            self._name_of[key] = name
            self._docs[name] = Document(page_content=text, metadata=dict(meta or {}), id=name)
        return names

    def delete(self, ids: Optional[list[str]] = None, **kwargs: Any) -> Optional[bool]:
        """Deletes the documents of ``ids`` (ids not held are skipped); ``None``: every
        document."""
        names = list(self._docs) if ids is None else [str(i) for i in ids]
        held = [n for n in dict.fromkeys(names) if n in self._key_of]
        if held and self._index is not None:
            self._index.delete([self._key_of[n] for n in held])
        for name in held:
            del self._name_of[self._key_of.pop(name)]
            del self._docs[name]
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents of ``ids`` that are held, in that order."""
        return [self._docs[str(i)].model_copy(deep=True) for i in ids if str(i) in self._docs]

    def similarity_search_with_score_by_vector(
        self, embedding: Sequence[float], k: int = 4, *, ef: Optional[int] = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` documents nearest ``embedding`` with their distances, nearest first."""
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        if self._index is None or len(self._index) == 0:
            return []
        found = self._index.search(np.asarray(embedding, dtype=np.float32), k, ef=ef)
        return [
            (self._docs[self._name_of[int(key)]].model_copy(deep=True), float(dist))
            for key, dist in zip(found.ids[0], found.distances[0])
            if key >= 0
        ]

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, float]]:
        return self.similarity_search_with_score_by_vector(self._embedding.embed_query(query), k, **kwargs)

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, **kwargs)]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # Distances as the index gives them: cosine and ip are 1 - similarity (0 to 2 for unit
        # vectors); l2 is the squared Euclidean distance.
        if self._metric == "l2":
            return lambda d: 1.0 / (1.0 + d)
        return lambda d: 1.0 - d / 2.0

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: Optional[list[dict[str, Any]]] = None,
        *,
        ids: Optional[list[str]] = None,
        **kwargs: Any,
    ) -> "OmendexVectorStore":
        """A store of ``texts``; ``kwargs`` are the store's options (``metric``, ``m`` ...)."""
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store
