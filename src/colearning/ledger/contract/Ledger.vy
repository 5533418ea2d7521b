# pragma version 0.4.3
# pragma evm-version cancun
# pragma optimize gas
"""
@title colearning ledger: the rounds of one collective-learning experiment
@license Apache-2.0
@notice The learners are registered at deployment, in experiment order. Round r's
        proposer is learner r % n; it proposes a weights id (the SHA-256 of the
        weights' bytes, which stay off chain) or passes. Every other learner casts a
        ballot on that id (approve, reject or abstain), signed with its own key
        (EIP-712), once, before the vote deadline. The round is finalized once every
        eligible learner cast a ballot or the deadline passed:
        accepted iff approvals * THRESHOLD_DEN >= THRESHOLD_NUM * (n - 1).
        A missing ballot counts as not approving and stays in the denominator; an
        exact tie passes; one learner alone always accepts. A proposer that does not
        propose before its deadline is skipped by anyone's call to skip().
        Anyone may submit a signed ballot or proposal (a coordinator batches a whole
        round in one settle() call); nobody can forge, alter or replay one.
        With a committee of K > 0 (fixed at deployment), the eligible voters of each
        round are K learners drawn from its non-proposers when the round opens, from
        seed = keccak256(experiment, round, block.prevrandao) (the seed is kept in
        `seeds`, the members in the open round's `state()`), and K replaces n - 1 in
        the rule; only members cast ballots. The draw is colearning's sample_indices
        (colearning/core/plans.py), so anyone can recompute a round's committee.
"""

# bit 255 of `voted` stays set, so the word never returns to zero between rounds
# (a zero-to-nonzero store costs 20,000 gas; nonzero-to-nonzero 2,900)
MAX_LEARNERS: constant(uint256) = 255
VOTED_MARK: constant(uint256) = 1 << 255

# ballots, as signed
REJECT: constant(uint256) = 0
APPROVE: constant(uint256) = 1
ABSTAIN: constant(uint256) = 2

# why a round was skipped
PASSED: constant(uint256) = 1
DEADLINE: constant(uint256) = 2

MAX_PERIOD: constant(uint256) = 1 << 32
HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168
LOW_255: constant(uint256) = (1 << 255) - 1
MASK64: constant(uint256) = (1 << 64) - 1
MASK16: constant(uint256) = (1 << 16) - 1
SPACE64: constant(uint256) = 1 << 64
# consecutive rejected draws before a committee draw gives up: each rejection has a
# chance below 2**-56 (at most 255 learners), so giving up never happens in practice
MAX_REJECTS: constant(uint256) = 8

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
NAME_HASH: constant(bytes32) = keccak256("colearning")
VERSION_HASH: constant(bytes32) = keccak256("1")
VOTE_TYPEHASH: constant(bytes32) = keccak256(
    "Vote(bytes32 experiment,uint256 round,bytes32 weights,uint8 ballot)"
)
PROPOSAL_TYPEHASH: constant(bytes32) = keccak256(
    "Proposal(bytes32 experiment,uint256 round,bytes32 weights)"
)


event Opened:
    experiment: bytes32
    learners: DynArray[address, MAX_LEARNERS]
    threshold_num: uint256
    threshold_den: uint256
    propose_period: uint256
    vote_period: uint256
    initial_weights: bytes32
    committee: uint256

event Proposed:
    round_index: indexed(uint256)
    proposer: indexed(address)
    weights: bytes32

# one bit per learner (bit i: learner i); a reject is a voter in neither other set
event Ballots:
    round_index: indexed(uint256)
    voters: uint256
    approvals: uint256
    abstentions: uint256

event Finalized:
    round_index: indexed(uint256)
    weights: bytes32
    accepted: bool
    approvals: uint256
    eligible: uint256

event Skipped:
    round_index: indexed(uint256)
    proposer: indexed(address)
    reason: uint256

event Announced:
    learner: indexed(address)
    endpoint: String[256]


# the open round, unpacked from `status`
struct Round:
    index: uint256
    deadline: uint256  # proposal deadline, or vote deadline once voting
    voting: bool  # a candidate is proposed and open to ballots
    ballots: uint256  # ballots stored in `voted` so far
    approvals: uint256  # approvals among them


EXPERIMENT: public(immutable(bytes32))
LEARNERS: immutable(DynArray[address, MAX_LEARNERS])
THRESHOLD_NUM: public(immutable(uint256))
THRESHOLD_DEN: public(immutable(uint256))
PROPOSE_PERIOD: public(immutable(uint256))
VOTE_PERIOD: public(immutable(uint256))
INITIAL_WEIGHTS: public(immutable(bytes32))
COMMITTEE: public(immutable(uint256))  # voters a round (0: every non-proposer)

# index (64 bits) | deadline (64) | voting (1, at bit 128) | ballots (16, at 136) |
# approvals (16, at 152): one storage slot, read once and written once a call
status: uint256
candidate: public(bytes32)
voted: uint256
current_weights: public(bytes32)
# with a committee: each round's draw seed, and the open round's members (bit i: learner i)
seeds: public(HashMap[uint256, bytes32])
members: uint256

seen: transient(HashMap[address, bool])


@deploy
def __init__(
    experiment: bytes32,
    learners: DynArray[address, MAX_LEARNERS],
    threshold_num: uint256,
    threshold_den: uint256,
    propose_period: uint256,
    vote_period: uint256,
    initial_weights: bytes32,
    committee: uint256,
):
    assert len(learners) > 0, "deploy: no learners"
    assert committee < len(learners), "deploy: committee larger than the non-proposers"
    assert threshold_den > 0 and threshold_num <= threshold_den, "deploy: threshold not in [0, 1]"
    assert propose_period > 0 and propose_period < MAX_PERIOD, "deploy: bad propose period"
    assert vote_period > 0 and vote_period < MAX_PERIOD, "deploy: bad vote period"
    assert initial_weights != empty(bytes32), "deploy: no initial weights"
    for learner: address in learners:
        assert learner != empty(address), "deploy: zero learner address"
        assert not self.seen[learner], "deploy: a learner is registered twice"
        self.seen[learner] = True
    EXPERIMENT = experiment
    LEARNERS = learners
    THRESHOLD_NUM = threshold_num
    THRESHOLD_DEN = threshold_den
    PROPOSE_PERIOD = propose_period
    VOTE_PERIOD = vote_period
    INITIAL_WEIGHTS = initial_weights
    COMMITTEE = committee
    self.current_weights = initial_weights
    self.voted = VOTED_MARK
    self._save(self._next(0))
    log Opened(
        experiment=experiment,
        learners=learners,
        threshold_num=threshold_num,
        threshold_den=threshold_den,
        propose_period=propose_period,
        vote_period=vote_period,
        initial_weights=initial_weights,
        committee=committee,
    )


# -- what a party sends ----------------------------------------------------------------


@external
def propose(round_index: uint256, weights: bytes32, sig_r: bytes32, sig_vs: bytes32):
    """
    @notice Propose `weights` for the open round, or pass with empty weights. Sent by
            the proposer itself (sig_r empty), or by anyone with its signature.
    """
    r: Round = self._propose(self._open(round_index), weights, sig_r, sig_vs)
    if r.voting:
        if len(LEARNERS) == 1:
            r = self._finalize(r, weights, False)
        else:
            self.candidate = weights
    self._save(r)


@external
def vote(round_index: uint256, voter: uint256, ballot: uint256, sig_r: bytes32, sig_vs: bytes32):
    """@notice One learner's signed ballot on the open round's candidate."""
    r: Round = self._open(round_index)
    self._check_voting(r)
    assert voter < len(LEARNERS), "vote: no such learner"
    assert ballot <= ABSTAIN, "vote: ballot must be 0 reject, 1 approve or 2 abstain"
    bit: uint256 = 1 << voter
    approvals: uint256 = 0
    abstentions: uint256 = 0
    if ballot == APPROVE:
        approvals = bit
    elif ballot == ABSTAIN:
        abstentions = bit
    voted: uint256 = self._check_shape(r, bit, approvals, abstentions)
    weights: bytes32 = self.candidate
    self._check_ballot(self._vote_digest(self._domain(), r.index, weights, ballot), voter, sig_r, sig_vs)
    self._count(r, weights, False, voted, bit, approvals, abstentions, 1, approvals >> voter)


@external
def settle(
    round_index: uint256,
    weights: bytes32,
    sig_r: bytes32,
    sig_vs: bytes32,
    voters: uint256,
    approvals: uint256,
    abstentions: uint256,
    sigs: DynArray[bytes32, 2 * MAX_LEARNERS],
):
    """
    @notice Ballots on `weights` in the open round, proposing it first if the round
            awaits its proposal: then (sig_r, sig_vs) is the proposer's signature of
            the proposal. A coordinator sends a whole round in this one call; ballots
            on a candidate already proposed leave the signature empty.
            Bit i of `voters` is learner i; its ballot is approve (bit i of
            `approvals`), abstain (of `abstentions`) or else reject; `sigs` holds
            each voter's (r, vs), in ascending learner order.
    """
    r: Round = self._open(round_index)
    fresh: bool = not r.voting
    if fresh:
        r = self._propose(r, weights, sig_r, sig_vs)
        if not r.voting:  # the proposer passed
            self._save(r)
            return
        if voters == 0:  # a proposal alone
            if len(LEARNERS) == 1:
                r = self._finalize(r, weights, False)
            else:
                self.candidate = weights
            self._save(r)
            return
    else:
        self._check_voting(r)
        assert weights == self.candidate, "ballots: not the open round's candidate"
    voted: uint256 = self._check_shape(r, voters, approvals, abstentions)
    # a ballot is one of three messages: hash each once, not once per voter
    domain: bytes32 = self._domain()
    digests: bytes32[3] = [
        self._vote_digest(domain, r.index, weights, REJECT),
        self._vote_digest(domain, r.index, weights, APPROVE),
        self._vote_digest(domain, r.index, weights, ABSTAIN),
    ]
    k: uint256 = 0
    left: uint256 = voters
    for i: uint256 in range(len(LEARNERS), bound=MAX_LEARNERS):
        if left == 0:
            break
        bit: uint256 = 1 << i
        if left & bit == 0:
            continue
        left = left ^ bit
        ballot: uint256 = REJECT
        if approvals & bit != 0:
            ballot = APPROVE
        elif abstentions & bit != 0:
            ballot = ABSTAIN
        assert k + 1 < len(sigs), "ballots: fewer signatures than voters"
        self._check_ballot(digests[ballot], i, sigs[k], sigs[k + 1])
        k += 2
    assert k == len(sigs), "ballots: more signatures than voters"
    self._count(r, weights, fresh, voted, voters, approvals, abstentions, k // 2, self._popcount(approvals))


@external
def finalize(round_index: uint256):
    """@notice Close the open round once every ballot is in or the vote deadline passed."""
    r: Round = self._open(round_index)
    assert r.voting, "finalize: nothing proposed yet"
    assert r.ballots == self._eligible() or block.timestamp > r.deadline, (
        "finalize: voting is still open"
    )
    self._save(self._finalize(r, self.candidate, True))


@external
def skip(round_index: uint256):
    """@notice Skip the open round: its proposer let the proposal deadline pass."""
    r: Round = self._open(round_index)
    assert not r.voting, "skip: already proposed; finalize instead"
    assert block.timestamp > r.deadline, "skip: the proposer still has time"
    log Skipped(round_index=r.index, proposer=LEARNERS[r.index % len(LEARNERS)], reason=DEADLINE)
    self._save(self._next(r.index + 1))


@external
def announce(endpoint: String[256]):
    """@notice A learner says where it serves weights by id (peer mode)."""
    for learner: address in LEARNERS:
        if learner == msg.sender:
            log Announced(learner=msg.sender, endpoint=endpoint)
            return
    raise "announce: sender is not a learner"


# -- what anyone reads -----------------------------------------------------------------


@view
@external
def learners() -> DynArray[address, MAX_LEARNERS]:
    return LEARNERS


@view
@external
def state() -> (uint256, uint256, bool, uint256, uint256, bytes32, bytes32, uint256, uint256):
    """
    @notice (open round, its deadline, voting, ballots in, approvals, candidate,
            current weights, voted bitmap, committee bitmap: 0 without a committee)
    """
    r: Round = self._load()
    return r.index, r.deadline, r.voting, r.ballots, r.approvals, self.candidate, self.current_weights, self.voted & LOW_255, self.members


@view
@external
def domain_separator() -> bytes32:
    return self._domain()


# -- internals -------------------------------------------------------------------------


@view
@internal
def _open(round_index: uint256) -> Round:
    r: Round = self._load()
    assert round_index == r.index, "round: not the open round"
    return r


@view
@internal
def _check_voting(r: Round):
    assert r.voting, "vote: nothing proposed yet"
    assert block.timestamp <= r.deadline, "vote: the vote deadline passed"


@internal
def _propose(r: Round, weights: bytes32, sig_r: bytes32, sig_vs: bytes32) -> Round:
    assert not r.voting, "propose: already proposed"
    assert block.timestamp <= r.deadline, "propose: the proposal deadline passed"
    proposer: address = LEARNERS[r.index % len(LEARNERS)]
    if sig_r == empty(bytes32):
        assert msg.sender == proposer, "propose: sender is not the proposer"
    else:
        digest: bytes32 = self._digest(
            keccak256(abi_encode(PROPOSAL_TYPEHASH, EXPERIMENT, r.index, weights))
        )
        assert self._signer(digest, sig_r, sig_vs) == proposer, (
            "propose: signature is not the proposer's"
        )
    if weights == empty(bytes32):
        log Skipped(round_index=r.index, proposer=proposer, reason=PASSED)
        return self._next(r.index + 1)
    log Proposed(round_index=r.index, proposer=proposer, weights=weights)
    return Round(
        index=r.index,
        deadline=block.timestamp + VOTE_PERIOD,
        voting=True,
        ballots=0,
        approvals=0,
    )


@view
@internal
def _check_shape(r: Round, voters: uint256, approvals: uint256, abstentions: uint256) -> uint256:
    """Check who cast ballots; returns the voted bitmap (with the mark) before them."""
    n: uint256 = len(LEARNERS)
    voted: uint256 = VOTED_MARK
    if r.ballots > 0:  # earlier ballots of this round are stored
        voted = self.voted
    assert voters != 0, "ballots: no voter"
    assert voters >> n == 0, "ballots: a voter is not a learner"
    assert voters & (1 << (r.index % n)) == 0, "ballots: the proposer does not vote"
    assert voters & voted == 0, "ballots: a learner already voted"
    assert approvals & abstentions == 0, "ballots: a ballot approves and abstains"
    assert (approvals | abstentions) & ~voters == 0, "ballots: a ballot without a voter"
    if COMMITTEE > 0:
        assert voters & ~self.members == 0, "ballots: a voter is not in this round's committee"
    return voted


@internal
def _count(
    r: Round,
    weights: bytes32,
    fresh: bool,
    voted: uint256,
    voters: uint256,
    approvals: uint256,
    abstentions: uint256,
    ballots: uint256,
    approved: uint256,
):
    """
    Record checked ballots; finalize if they complete the round. `fresh`: the
    candidate was proposed in this call and is not stored yet.
    """
    log Ballots(round_index=r.index, voters=voters, approvals=approvals, abstentions=abstentions)
    total: Round = r
    total.ballots += ballots
    total.approvals += approved
    if total.ballots == self._eligible():
        total = self._finalize(total, weights, r.ballots > 0)
    else:
        if fresh:
            self.candidate = weights
        self.voted = voted | voters
    self._save(total)


@view
@internal
def _vote_digest(domain: bytes32, round_index: uint256, weights: bytes32, ballot: uint256) -> bytes32:
    """The EIP-712 digest a learner signs for `ballot` on `weights` in this round."""
    return keccak256(
        concat(
            x"1901",
            domain,
            keccak256(abi_encode(VOTE_TYPEHASH, EXPERIMENT, round_index, weights, ballot)),
        )
    )


@view
@internal
def _check_ballot(digest: bytes32, voter: uint256, sig_r: bytes32, sig_vs: bytes32):
    """Revert unless learner `voter` signed `digest`."""
    if self._signer(digest, sig_r, sig_vs) != LEARNERS[voter]:
        raw_revert(
            abi_encode(
                concat("ballots: learner ", uint2str(voter), "'s signature does not match"),
                method_id=method_id("Error(string)"),
            )
        )


@internal
def _finalize(r: Round, weights: bytes32, stored: bool) -> Round:
    """Tally (DESIGN.md's rule, in integers), adopt if accepted, open the next round."""
    eligible: uint256 = self._eligible()
    accepted: bool = r.approvals * THRESHOLD_DEN >= THRESHOLD_NUM * eligible
    if accepted:
        self.current_weights = weights
    if stored:
        self.voted = VOTED_MARK
    log Finalized(
        round_index=r.index,
        weights=weights,
        accepted=accepted,
        approvals=r.approvals,
        eligible=eligible,
    )
    return self._next(r.index + 1)


@view
@internal
def _eligible() -> uint256:
    if COMMITTEE > 0:
        return COMMITTEE
    return len(LEARNERS) - 1


@internal
def _next(index: uint256) -> Round:
    """Open round `index` (drawing its committee, if any)."""
    if COMMITTEE > 0:
        seed: bytes32 = keccak256(abi_encode(EXPERIMENT, index, block.prevrandao))
        self.seeds[index] = seed
        self.members = self._committee(seed, index % len(LEARNERS))
    return Round(
        index=index, deadline=block.timestamp + PROPOSE_PERIOD, voting=False, ballots=0, approvals=0
    )


@view
@internal
def _committee(seed: bytes32, proposer: uint256) -> uint256:
    """
    COMMITTEE learners other than `proposer`, as a bitmap: sample_indices(seed,
    n - 1, COMMITTEE) over the non-proposers in learner order (a partial Fisher-Yates
    shuffle; value j of its stream is bits 64 * (3 - j % 4) up of
    SHA-256(seed || j // 4 as 8 bytes big-endian), rejected at or above the largest
    multiple of the span below 2**64).
    """
    population: uint256 = len(LEARNERS) - 1
    # moved[j]: 1 + what position j holds after the swaps so far; 0: still j itself
    moved: uint256[MAX_LEARNERS] = empty(uint256[MAX_LEARNERS])
    members: uint256 = 0
    digest: uint256 = 0
    block_index: uint256 = 0
    used: uint256 = 4  # values taken from `digest` (4: hash the next block)
    for i: uint256 in range(COMMITTEE, bound=MAX_LEARNERS):
        span: uint256 = population - i
        limit: uint256 = SPACE64 - SPACE64 % span
        value: uint256 = limit
        for attempt: uint256 in range(MAX_REJECTS):
            if used == 4:
                digest = convert(
                    sha256(concat(seed, slice(convert(block_index, bytes32), 24, 8))), uint256
                )
                block_index += 1
                used = 0
            value = (digest >> (192 - 64 * used)) & MASK64
            used += 1
            if value < limit:
                break
        assert value < limit, "committee: the draw gave up"
        j: uint256 = i + value % span
        at_j: uint256 = j
        if moved[j] != 0:
            at_j = moved[j] - 1
        at_i: uint256 = i
        if moved[i] != 0:
            at_i = moved[i] - 1
        moved[j] = at_i + 1
        if at_j >= proposer:  # positions among the non-proposers, to learner indices
            at_j += 1
        members |= 1 << at_j
    return members


@view
@internal
def _load() -> Round:
    s: uint256 = self.status
    return Round(
        index=s & MASK64,
        deadline=(s >> 64) & MASK64,
        voting=(s >> 128) & 1 == 1,
        ballots=(s >> 136) & MASK16,
        approvals=(s >> 152) & MASK16,
    )


@internal
def _save(r: Round):
    voting: uint256 = 0
    if r.voting:
        voting = 1
    self.status = (
        r.index | (r.deadline << 64) | (voting << 128) | (r.ballots << 136) | (r.approvals << 152)
    )


@view
@internal
def _domain() -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@view
@internal
def _digest(struct_hash: bytes32) -> bytes32:
    return keccak256(concat(x"1901", self._domain(), struct_hash))


@pure
@internal
def _popcount(bits: uint256) -> uint256:
    count: uint256 = 0
    left: uint256 = bits
    for i: uint256 in range(MAX_LEARNERS):
        if left == 0:
            break
        left = left & (left - 1)
        count += 1
    return count


@pure
@internal
def _signer(digest: bytes32, sig_r: bytes32, sig_vs: bytes32) -> address:
    """EIP-2098 compact signature: v in the top bit of vs; s must be canonical."""
    vs: uint256 = convert(sig_vs, uint256)
    s: uint256 = vs & LOW_255
    assert s <= HALF_N and s != 0, "signature: s is not canonical"
    return ecrecover(digest, 27 + (vs >> 255), convert(sig_r, uint256), s)
