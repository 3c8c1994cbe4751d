"""Failure classification, pure: which JSON-RPC error replies are the node's trouble (retried
elsewhere) and which answer the request; and the order a block's decisions execute in."""

from dataclasses import dataclass

from keeper.app.execute import prioritised
from keeper.sources.failures import node_specific


def test_node_specific_replies_are_retried_answers_are_not():
    def err(code, message, data=None):
        e = {"code": code, "message": message}
        return {"jsonrpc": "2.0", "id": 1, "error": e | ({"data": data} if data else {})}

    retried = [
        err(-32000, "header not found"),
        err(-32000, "missing trie node 1a2b (path )"),
        err(-32005, "rate limit exceeded"),
        err(429, "Too Many Requests"),
        err(-32603, "internal error"),
        err(-32603, "something odd"),
    ]
    answers = [
        {"jsonrpc": "2.0", "id": 1, "result": "0x1"},
        err(3, "execution reverted", "0x08c379a0"),
        err(-32000, "execution reverted: 45"),
        err(-32005, "query returned more than 10000 results"),  # a refused log range: halve it
        err(-32000, "nonce too low"),
        err(-32603, "internal error", "0x4e487b71"),  # a revert's data: an answer
    ]
    assert all(node_specific(r) for r in retried), [r for r in retried if not node_specific(r)]
    assert not any(node_specific(r) for r in answers), [r for r in answers if node_specific(r)]


@dataclass
class A:
    subject: str
    protective: bool = False
    after_previous: bool = False


@dataclass
class W:
    label: str


def test_protection_of_every_market_first_and_chains_stay_whole():
    aave, comet = W("aave"), W("comet")
    absorb, buy = A("absorb"), A("buy", after_previous=True)
    batches = [
        (aave, [A("liq1"), A("mine", protective=True), A("liq2")]),
        (comet, [absorb, buy, A("my comet", protective=True)]),
    ]
    order = [(w.label, [a.subject for a in acts]) for w, acts in prioritised(batches)]  # type: ignore[arg-type]
    assert order == [
        ("aave", ["mine"]),
        ("comet", ["my comet"]),
        ("aave", ["liq1", "liq2"]),
        ("comet", ["absorb", "buy"]),  # the purchase stays behind its absorb
    ]
