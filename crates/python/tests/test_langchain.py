"""The LangChain VectorStore, through the standard integration tests `langchain-tests` ships for
vector stores (offline: a deterministic fake embedding), and its own edges."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("langchain_tests", reason="langchain-tests is not installed (pip install 'omendex[langchain]' langchain-tests)")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings  # noqa: E402
from langchain_core.vectorstores import VectorStore  # noqa: E402
from langchain_tests.integration_tests import VectorStoreIntegrationTests  # noqa: E402

from omendex.langchain import OmendexVectorStore  # noqa: E402


class TestOmendexVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self) -> VectorStore:  # type: ignore[override]
        return OmendexVectorStore(self.get_embeddings(), seed=1)


class TestOmendexVectorStoreStandardL2(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self) -> VectorStore:  # type: ignore[override]
        return OmendexVectorStore(self.get_embeddings(), metric="l2", quantization="int8")


def test_scores_relevance_and_from_texts() -> None:
    texts = [f"text {i}" for i in range(200)]
    store = OmendexVectorStore.from_texts(texts, DeterministicFakeEmbedding(size=16), [{"i": i} for i in range(200)])
    hits = store.similarity_search_with_score("text 7", k=3)
    assert hits[0][0].page_content == "text 7" and hits[0][0].metadata == {"i": 7}
    assert hits[0][1] == pytest.approx(0.0, abs=1e-5) and hits[0][1] <= hits[1][1] <= hits[2][1]
    relevant = store.similarity_search_with_relevance_scores("text 7", k=3)
    assert relevant[0][1] == pytest.approx(1.0, abs=1e-5) and all(0.0 <= s <= 1.0 for _, s in relevant)
    assert len(store.similarity_search("text 7", k=500)) == 200
    # A returned document is a copy: changing it changes nothing held.
    hits[0][0].metadata["i"] = -1
    assert store.get_by_ids([hits[0][0].id or ""])[0].metadata == {"i": 7}
    store.get_by_ids([hits[0][0].id or ""])[0].metadata["i"] = -2
    assert store.similarity_search("text 7", k=1)[0].metadata == {"i": 7}
    store.delete()
    assert len(store) == 0 and store.similarity_search("text 7") == []


class Failing(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float("nan")] * 4 for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return [0.0] * 4


def test_bad_input_leaves_the_store_as_it_was() -> None:
    store = OmendexVectorStore(DeterministicFakeEmbedding(size=4))
    store.add_texts(["a", "b"], ids=["1", "2"])
    bad: list[dict[str, Any]] = [
        dict(texts=["c"], metadatas=[{}, {}]),
        dict(texts=["c", "d"], ids=["3"]),
        dict(texts=["c", "d"], ids=["3", "3"]),
    ]
    for call in bad:
        with pytest.raises(ValueError):
            store.add_texts(**call)
    with pytest.raises(ValueError):
        store.similarity_search("a", k=0)
    with pytest.raises(ValueError):
        OmendexVectorStore(DeterministicFakeEmbedding(size=4), metric="hamming")
    held = store.index
    assert held is not None
    store._embedding = Failing()  # an embedding model that returns NaN: refused by the index
    with pytest.raises(ValueError):
        store.add_texts(["c"], ids=["1"])
    assert len(store) == 2 and len(held) == 2
    assert [d.id for d in store.get_by_ids(["1", "2"])] == ["1", "2"]
    assert store.get_by_ids(["1"])[0] == Document(page_content="a", metadata={}, id="1")
    assert np.isfinite(held.get(held.ids()).sum())
