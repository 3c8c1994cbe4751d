"""The journal's bookkeeping, on a real SQLite file."""

import time

from keeper.execution.journal import ActionKey, Journal


def test_action_keys_are_idempotent_and_in_flight_positions_known(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    key = ActionKey("aave-v3 0x8787", "0xabc", "Liquidate", 100)
    assert j.begin(key, {"debt_to_cover": 5})
    assert not j.begin(key, {"debt_to_cover": 5})  # the same action is not new
    j.add_tx(key, "0x01", 7, b"raw", "liquidationCall", 10**9, 300_000)
    j.set_action(key, "signed")
    assert j.in_flight() == {("aave-v3 0x8787", "0xabc")} and j.next_nonce() == 8
    assert j.gas_spent_since(time.time() - 60) == 10**9 * 300_000  # in flight counts at its worst case
    j.set_tx("0x01", "confirmed", gas_cost_wei=123, block=5)
    assert j.in_flight() == set() and j.next_nonce() is None
    assert j.gas_spent_since(time.time() - 60) == 123
    assert j.actions_sent_since(time.time() - 60) == 1
    j.close()
    # a new process opening the same file sees the same history
    again = Journal(tmp_path / "j.sqlite")
    assert again.action_state(key) == "signed" and again.last_sent("aave-v3 0x8787", "0xabc") is not None
