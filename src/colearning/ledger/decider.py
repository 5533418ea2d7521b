"""The contract decides: :class:`EvmDecider` plugs the ledger into the driver.

Each round, as a coordinator holding the (simulated) learners' keys:

- ``sign_votes``: every eligible voter's ballot (approve, reject, or abstain for a
  failed call) is signed with that learner's key (EIP-712); the signature goes into
  the vote's record;
- ``proposed``: a round without a usable proposal is closed on chain by the
  proposer's signed pass; in ``each`` mode a proposal is sent on its own;
- ``decide``: the signed proposal and ballots go to the contract (one ``settle``
  transaction, or one transaction per ballot in ``each`` mode), and the decision is
  the contract's ``Finalized`` event. The Python tally is computed too, as a cross-
  check: if it disagrees, a :class:`TallyMismatchWarning` says so and the driver still
  obeys the contract.

With a committee (``committee=K``, fixed at deployment), the contract draws each
round's K voters when the round opens, from the block's RANDAO value; the planner draws
from the same seed (:class:`ChainRandomness`), and ``begin`` checks that its committee is
the chain's before anyone is asked.

A round the chain closed already (a run killed after its transaction and before the
directory committed the round) is not sent again: the replayed round must match what
the chain recorded (proposer, weights id, every ballot), and the chain's decision is
returned. A mismatch raises :class:`~colearning.core.exceptions.LedgerError`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

from colearning.core.decider import Decider, TallyDecider
from colearning.core.exceptions import ConfigError, LedgerError
from colearning.core.plans import CommitteeRandomness, RoundPlan
from colearning.core.protocol import Ballot, Candidate, Decision, Proposal, Vote
from colearning.ledger.chain import Receipt
from colearning.ledger.client import Ballot as SignedBallot
from colearning.ledger.client import ChainEvent, LedgerClient, decode_events
from colearning.ledger.contract import ABSTAIN, APPROVE, REJECT, SKIP_PASSED
from colearning.ledger.eip712 import Signature
from colearning.ledger.history import ChainRound, rebuild
from colearning.ledger.session import Ledger

BALLOT_CODES = {Ballot.APPROVE: APPROVE, Ballot.REJECT: REJECT, Ballot.ABSTAIN: ABSTAIN}


class TallyMismatchWarning(UserWarning):
    """The contract and the Python tally decided a round differently."""


class ChainRandomness:
    """Committee seeds from the ledger contract: the seed it drew each round from
    when the round opened (``seeds(round)``, from the block's ``prevrandao``), so that
    no party chooses or foresees its committee before the round is open."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def round_seed(self, round_index: int) -> bytes:
        seed = self.ledger.require_client().round_seed(round_index)
        if seed == bytes(32):
            raise LedgerError(
                f"the ledger contract holds no committee seed for round {round_index}: the "
                "round is not open on chain yet, or the contract was deployed without a "
                "committee"
            )
        return seed

    def describe(self) -> dict[str, object]:
        return {"randomness": "chain"}


class EvmDecider(Decider):
    """Decisions from the ledger contract (see the module docstring). ``committee``:
    voters the chain draws each round (``None`` or 0: every non-proposer)."""

    name = "contract"

    def __init__(
        self, ledger: Ledger, vote_threshold: float = 0.5, committee: int | None = None
    ) -> None:
        super().__init__(vote_threshold)
        self.ledger = ledger
        self.committee = int(committee or 0)
        self.ids = list(ledger.learner_ids)
        self.index = {lid: i for i, lid in enumerate(self.ids)}
        self.tally = TallyDecider(vote_threshold)
        self._plan: RoundPlan | None = None
        self._closed: ChainRound | None = None  # the chain's record of a closed round
        self._early: list[ChainEvent] = []  # events of this round's earlier transactions
        self._open_round: int | None = None  # the chain's open round, when known
        self.receipts: list[Receipt] = []

    @property
    def client(self) -> LedgerClient:
        return self.ledger.require_client()

    def start(self, initial_weights_id: str) -> None:
        """Deploy the contract (a new experiment) or check the deployed one."""
        self.ledger.deploy(self.vote_threshold, initial_weights_id, committee=self.committee)

    # -- Decider ------------------------------------------------------------------------

    def committee_randomness(self) -> CommitteeRandomness | None:
        return ChainRandomness(self.ledger) if self.committee else None

    def begin(self, plan: RoundPlan) -> None:
        r = plan.round_index
        n = len(self.ids)
        if plan.mode != "single" or plan.proposers != (self.ids[r % n],):
            raise ConfigError(
                f"round {r}: the ledger contract chooses the proposer round-robin "
                f"({self.ids[r % n]} for round {r}); this plan has {list(plan.proposers)}. "
                "Use the round-robin proposer policy with --ledger evm"
            )
        if self.committee:
            if plan.committee is None or len(plan.voters) != self.committee:
                raise ConfigError(
                    f"round {r}: the ledger draws a committee of {self.committee} voters; "
                    f"this plan has voters {list(plan.voters)}. Run with --committee "
                    f"{self.committee}"
                )
        elif set(plan.voters) != set(self.ids) - {self.ids[r % n]}:
            raise ConfigError(
                f"round {r}: with the ledger every learner but the proposer votes; this "
                f"plan has voters {list(plan.voters)}"
            )
        self._plan = plan
        self._closed = None
        self._early = []
        if self._open_round == r and not self.committee:
            return  # the last round's own transaction opened this one: no need to ask
        state = self.client.state()
        if state.index == r and self.committee:
            drawn = [lid for i, lid in enumerate(self.ids) if (state.members >> i) & 1]
            if set(plan.voters) != set(drawn):
                raise LedgerError(
                    f"round {r}: the ledger contract drew the committee {drawn}; the plan "
                    f"has {sorted(plan.voters)} (its committee was not drawn from the "
                    "chain's seed)"
                )
        if state.index < r:
            raise LedgerError(
                f"the ledger contract's open round is {state.index}, but the experiment "
                f"directory already holds rounds up to {r - 1}: the chain lost rounds (a "
                "restarted node without its --state, or another chain)"
            )
        if state.index > r:
            self._closed = self._chain_round(r)

    def sign_votes(
        self, round_index: int, candidate: Candidate, votes: tuple[Vote, ...]
    ) -> tuple[Vote, ...]:
        plan = self._require_plan(round_index)
        voters = set(plan.voters)
        weights = bytes.fromhex(candidate.weights_id)
        out = []
        for v in votes:
            if v.learner_id in voters:
                code = BALLOT_CODES[v.ballot]
                key = self.ledger.keys[v.learner_id]
                sig = self.client.sign_vote(key, round_index, weights, code)
                v = dataclasses.replace(v, signature=sig.hex())
            out.append(v)
        return tuple(out)

    def proposed(self, round_index: int, proposals: Sequence[Proposal]) -> None:
        plan = self._require_plan(round_index)
        usable = [p for p in proposals if p.usable and p.weights_id]
        proposer = plan.proposers[0]
        if self._closed is not None:
            if not usable:
                self._expect(
                    self._closed.status == "skipped" and self._closed.skip_reason == SKIP_PASSED,
                    round_index,
                    f"the chain recorded it as {self._closed.status}, the replay has no "
                    "usable proposal",
                )
            return
        if not usable:
            # nothing to vote on: the proposer passes (signed by its key), closing the round
            key = self.ledger.keys[proposer]
            sig = self.client.sign_proposal(key, round_index, bytes(32))
            self._open_round = None
            self.receipts.append(self.client.propose(round_index, bytes(32), sig))
            self._open_round = round_index + 1
            return
        if self.ledger.vote_mode == "each":
            weights = bytes.fromhex(str(usable[0].weights_id))
            state = self.client.state()
            if state.voting:
                self._expect(state.candidate == weights, round_index, "another candidate")
                return
            sig = self.client.sign_proposal(self.ledger.keys[proposer], round_index, weights)
            receipt = self.client.propose(round_index, weights, sig)
            self.receipts.append(receipt)
            self._early = decode_events(self.client.contract, receipt.logs)

    def decide(
        self,
        round_index: int,
        candidate: Candidate,
        votes: Sequence[Vote],
        eligible: Sequence[str],
    ) -> Decision:
        check = self.tally.decide(round_index, candidate, votes, eligible)
        weights = bytes.fromhex(candidate.weights_id)
        ballots = self._ballots(votes, eligible)
        self._open_round = None
        if self._closed is not None:
            decision = self._replayed(round_index, weights, ballots)
        else:
            events = self._send(round_index, weights, ballots)
            decision = self._finalized(round_index, events)
            self._open_round = round_index + 1
        if (decision.accepted, decision.approvals, decision.eligible) != (
            check.accepted,
            check.approvals,
            check.eligible,
        ):
            warnings.warn(
                f"round {round_index}: the contract decided accepted={decision.accepted} "
                f"({decision.approvals}/{decision.eligible}), the Python tally "
                f"accepted={check.accepted} ({check.approvals}/{check.eligible}); the "
                "contract's decision stands",
                TallyMismatchWarning,
                stacklevel=2,
            )
        return decision

    def close(self) -> None:
        self.ledger.close()

    def describe(self) -> dict[str, object]:
        return self.ledger.describe()

    # -- steps --------------------------------------------------------------------------

    def _require_plan(self, round_index: int) -> RoundPlan:
        if self._plan is None or self._plan.round_index != round_index:
            raise LedgerError(f"round {round_index} was not begun on the ledger")
        return self._plan

    def _ballots(self, votes: Sequence[Vote], eligible: Sequence[str]) -> list[SignedBallot]:
        allowed = set(eligible)
        out = []
        for v in votes:
            if v.learner_id in allowed and v.signature:
                code = BALLOT_CODES[v.ballot]
                out.append(
                    SignedBallot(self.index[v.learner_id], code, Signature.from_hex(v.signature))
                )
        return out

    def _send(
        self, round_index: int, weights: bytes, ballots: list[SignedBallot]
    ) -> list[ChainEvent]:
        client = self.client
        plan = self._require_plan(round_index)
        if self.ledger.vote_mode == "each":
            done = client.state().voted
            receipts = [client.vote(round_index, b) for b in ballots if not (done >> b.voter) & 1]
        else:
            proposer = self.ledger.keys[plan.proposers[0]]
            sig = client.sign_proposal(proposer, round_index, weights)
            receipts = [client.settle(round_index, weights, sig, ballots)]
        self.receipts.extend(receipts)
        events = [e for rec in receipts for e in decode_events(client.contract, rec.logs)]
        return self._early + events

    def _finalized(self, round_index: int, events: Sequence[ChainEvent]) -> Decision:
        for e in events:
            if e.name == "Finalized" and e.round_index == round_index:
                return Decision(
                    accepted=bool(e.fields["accepted"]),
                    approvals=int(e.fields["approvals"]),
                    eligible=int(e.fields["eligible"]),
                    threshold=self.threshold,
                    decided_by=self.name,
                )
        raise LedgerError(
            f"round {round_index} was not finalized by its ballots: some eligible voter's "
            "ballot is unsigned, so the round stays open until its vote deadline"
        )

    def _chain_round(self, round_index: int) -> ChainRound:
        client = self.client
        start = self.ledger.info.deploy_block if self.ledger.info else 0
        history = rebuild(client.events(start or 0))
        for r in history.rounds:
            if r.round_index == round_index:
                return r
        raise LedgerError(f"the chain has closed round {round_index} but holds no event of it")

    def _replayed(self, round_index: int, weights: bytes, ballots: list[SignedBallot]) -> Decision:
        chain = self._closed
        assert chain is not None
        self._expect(chain.weights == weights, round_index, "another weights id")
        got = {b.voter: b.ballot for b in ballots}
        self._expect(chain.ballots == got, round_index, "other ballots")
        self._expect(chain.status in ("accepted", "rejected"), round_index, chain.status)
        return Decision(
            accepted=chain.status == "accepted",
            approvals=int(chain.approvals or 0),
            eligible=int(chain.eligible or 0),
            threshold=self.threshold,
            decided_by=self.name,
        )

    def _expect(self, ok: bool, round_index: int, what: str) -> None:
        if not ok:
            raise LedgerError(
                f"round {round_index} is closed on chain already, and the replayed round "
                f"differs ({what}): the learners did not compute the same round again "
                "(not seeded per round?), so this run cannot continue on this chain"
            )
