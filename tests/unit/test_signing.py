"""The burst's EIP-1559 signer produces exactly what eth-account produces."""

import random

from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_utils import keccak, to_checksum_address

from keeper.execution.signer import sign_eip1559


def test_raw_transactions_are_byte_identical_to_eth_account() -> None:
    rng = random.Random(11)
    for _ in range(200):
        secret = rng.randbytes(32)
        account = Account.from_key(secret)
        fields = {
            "chainId": rng.choice([1, 10, 8453, 31337, 2**40]),
            "nonce": rng.choice([0, 1, rng.randrange(2**32)]),
            "maxPriorityFeePerGas": rng.randrange(0, 10**11),
            "gas": rng.randrange(21_000, 30_000_000),
            "to": to_checksum_address(rng.randbytes(20)),
            "value": rng.choice([0, rng.randrange(2**128)]),
            "data": rng.randbytes(rng.choice([0, 4, 68, 1_000])),
        }
        fields["maxFeePerGas"] = fields["maxPriorityFeePerGas"] + rng.randrange(0, 10**12)
        expected = account.sign_transaction({"type": 2, **fields})
        raw = sign_eip1559(
            PrivateKey(secret),
            fields["chainId"],
            fields["nonce"],
            fields["maxPriorityFeePerGas"],
            fields["maxFeePerGas"],
            fields["gas"],
            fields["to"],
            fields["value"],
            fields["data"],
        )
        assert raw == bytes(expected.raw_transaction)
        assert keccak(raw) == bytes(expected.hash)
        assert Account.recover_transaction(raw) == account.address
