"""Linear-chain CRF output layer with the tag scheme's transition constraints.

Scores a tag sequence y for emissions e (B, T, K) as
    start[y_0] + sum_t e[t, y_t] + sum_t trans[y_{t-1}, y_t] + end[y_last]
and trains on the negative log-likelihood. Transitions, first and last tags that the
training data's scheme forbids (data/bio.py: in BIO `I-x` after anything but `B-x`/`I-x`
or at the start; in BIOES also `O` after `B-x`, or `B-x` at the end) are fixed at a large
negative score, unless the training data itself contains them.

The forward algorithm runs one (B, K) x (K, K) matrix product per step in probability
space, renormalised at every step, instead of a (B, K, K) logsumexp: the same value, with
several times fewer operations. Viterbi keeps the max-plus form; k-best Viterbi
(`k_best_viterbi`) keeps the n best prefixes ending in each tag at each step instead of one.

Confidence: a span's probability under the CRF (the sum over every tag sequence that
holds exactly this chunk) comes from the forward and backward log-potentials: the prefix
up to the span, the span's own tags, and the suffix after it, with the tags on either side
not continuing the chunk (`span_marginals`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from slotfill.data.bio import (
    detect_scheme,
    extract_spans,
    may_end,
    may_follow,
    scheme_of_tags,
)

FORBIDDEN = -1e4
# Candidate scores that k-best Viterbi holds at once, (rows, K, n, K) per step: bigger
# batches are decoded in slices of rows, so memory stays near 128 MB whatever K and n.
K_BEST_BUDGET = 1 << 25


class Transitions(NamedTuple):
    allowed: Tensor  # (K, K) bool: tag i may be followed by tag j
    start: Tensor  # (K,) bool: may come first
    end: Tensor  # (K,) bool: may come last


def allowed_transitions(tags: Sequence[str],
                        observed: Iterable[Sequence[str]] | Mapping[Sequence[str], int] = ()
                        ) -> Transitions:
    """What the scheme of the `observed` gold sequences allows (data/bio.py; without
    sequences, the scheme the tag names show, else BIO), plus anything they contain."""
    observed = observed if isinstance(observed, Mapping) else list(observed)  # (or counted)
    scheme = detect_scheme(observed) if observed else scheme_of_tags(tags) or "bio"
    allowed = torch.tensor([[may_follow(a, b, scheme) for b in tags] for a in tags],
                           dtype=torch.bool)
    start = torch.tensor([may_follow(None, b, scheme) for b in tags], dtype=torch.bool)
    end = torch.tensor([may_end(b, scheme) for b in tags], dtype=torch.bool)
    index = {t: i for i, t in enumerate(tags)}
    for sequence in observed:
        ids = [index[t] for t in sequence if t in index]
        if ids:
            start[ids[0]] = end[ids[-1]] = True
        for a, b in zip(ids, ids[1:]):
            allowed[a, b] = True
    return Transitions(allowed, start, end)


def chunk_relations(tags: Sequence[str]) -> tuple[Tensor, Tensor]:
    """How tags form chunks, as data/bio.extract_spans delimits them: (K, K) bool
    `continues[i, j]`, tag j after tag i extends i's chunk; (K,) long `kinds`, each tag's
    chunk type as an index (-1 for a tag outside every chunk, such as O). The rules are
    pairwise, so these two tables decide whether any tag sequence holds a given span."""
    types: dict[str, int] = {}
    kinds = []
    for tag in tags:
        spans = extract_spans([tag])
        kinds.append(types.setdefault(spans[0][0], len(types)) if spans else -1)
    continues = torch.tensor([[len(extract_spans([a, b])) == 1 and extract_spans([a, b])[0][1:]
                               == (0, 2) for b in tags] for a in tags], dtype=torch.bool)
    return continues, torch.tensor(kinds, dtype=torch.long)


class CRFHead(nn.Module):
    """Emissions from encoder states, transition scores, the NLL loss and Viterbi.
    `loss`/`decode` take encoder states; `nll`/`viterbi` take emissions. `linear` shares
    an existing tag layer (a Jordan network feeds its output back), else one is made.
    `chunks` (chunk_relations of the tags) enables span confidences."""

    def __init__(self, input_size: int, allowed: Tensor, allowed_start: Tensor,
                 allowed_end: Tensor | None = None, linear: nn.Linear | None = None,
                 chunks: tuple[Tensor, Tensor] | None = None) -> None:
        super().__init__()
        K = allowed.size(0)
        self.linear = linear if linear is not None else nn.Linear(input_size, K)
        self.transitions = nn.Parameter(torch.zeros(K, K))  # [from, to]
        self.start = nn.Parameter(torch.zeros(K))
        self.end = nn.Parameter(torch.zeros(K))
        self.register_buffer("transition_mask", torch.where(allowed, 0.0, FORBIDDEN))
        self.register_buffer("start_mask", torch.where(allowed_start, 0.0, FORBIDDEN))
        self.register_buffer("end_mask", torch.zeros(K) if allowed_end is None else
                             torch.where(allowed_end, 0.0, FORBIDDEN))
        # plain attributes, not buffers: derived from the tag names, never saved or synced
        self.chunks = chunks

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints from before end constraints existed: every last tag allowed
        state_dict.setdefault(prefix + "end_mask", torch.zeros_like(self.end_mask))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, states: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.linear(states)  # (B, T, K) emissions

    def loss(self, states: Tensor, tags: Tensor, mask: Tensor | None) -> Tensor:
        return self.nll(self(states), tags, mask)

    def decode(self, states: Tensor, mask: Tensor | None) -> Tensor:
        return self.viterbi(self(states), mask)

    def _check(self, scores: Tensor, tags: Tensor | None, mask: Tensor | None) -> None:
        """Shape checks with messages that say what was expected (as pytorch-crf does)."""
        if scores.dim() != 3:
            raise ValueError(f"emissions must have 3 dimensions (B, T, K), got {scores.dim()}")
        if scores.size(2) != self.start.numel():
            raise ValueError(f"expected last dimension of emissions is {self.start.numel()} "
                             f"(the number of tags), got {scores.size(2)}")
        if scores.size(1) == 0:
            raise ValueError("emissions must have at least one time step, got 0")
        for name, other in (("tags", tags), ("mask", mask)):
            if other is not None and other.shape != scores.shape[:2]:
                raise ValueError(f"the first two dimensions of emissions and {name} must "
                                 f"match, got {tuple(scores.shape[:2])} and "
                                 f"{tuple(other.shape)}")

    def _trans(self) -> tuple[Tensor, Tensor]:
        return self.transitions + self.transition_mask, self.start + self.start_mask

    def _end(self) -> Tensor:
        return self.end + self.end_mask

    @torch.autocast("cuda", enabled=False)
    @torch.autocast("cpu", enabled=False)
    def nll(self, scores: Tensor, tags: Tensor, mask: Tensor | None) -> Tensor:
        """Negative log-likelihood summed over utterances, divided by the number of
        tokens (the scale of a per-token cross-entropy). scores (B, T, K), tags (B, T),
        mask (B, T) or None. Always in float32: the forward algorithm's sums need it."""
        self._check(scores, tags, mask)
        scores = scores.float()
        trans, start = self._trans()
        nll = self.log_partition(scores, mask, trans, start) - \
            self.sequence_score(scores, tags, mask, trans, start)  # (B,)
        tokens = scores.size(0) * scores.size(1) if mask is None else mask.sum()
        return nll.sum() / tokens

    @torch.autocast("cuda", enabled=False)
    @torch.autocast("cpu", enabled=False)
    def soft_loss(self, scores: Tensor, targets: Tensor, mask: Tensor | None,
                 weight: Tensor, temperature: float = 1.0) -> Tensor:
        """The NLL of soft targets (B, T, K), per-word tag distributions that sum to 1 at
        real words and 0 at padding, taken as independent words: log Z minus the expected
        score, every score divided by `temperature`; per utterance times `weight` (B,),
        summed and divided by the tokens, as `nll`. Its gradient with respect to the
        emissions is the CRF's marginals minus the targets (at temperature 1). Transitions
        the tag scheme forbids add nothing to the expected score."""
        self._check(scores, None, mask)
        t = temperature
        scores, targets = scores.float() / t, targets.float()
        trans, start = self._trans()
        log_z = ForwardAlgorithm.apply(scores, trans / t, start / t, self._end() / t, mask)
        allowed = (self.transition_mask == 0).to(scores.dtype)
        moved = torch.einsum("bti,btj,ij->b", targets[:, :-1], targets[:, 1:],
                             self.transitions * allowed / t)
        if mask is None:
            last = targets[:, -1]
        else:
            at = (mask.sum(1) - 1).view(-1, 1, 1).expand(-1, 1, targets.size(2))
            last = targets.gather(1, at).squeeze(1)  # (B, K)
        expected = ((targets * scores).sum((1, 2)) + moved
                    + targets[:, 0] @ (self.start * (self.start_mask == 0)) / t
                    + last @ (self.end * (self.end_mask == 0)) / t)  # (B,)
        tokens = scores.size(0) * scores.size(1) if mask is None else mask.sum()
        return ((log_z - expected) * weight).sum() / tokens

    @torch.no_grad()
    def marginals(self, scores: Tensor, mask: Tensor | None,
                  temperature: float = 1.0) -> Tensor:
        """Each word's tag distribution under the CRF, (B, T, K), 0 at padding: the
        gradient of log Z with respect to the emissions, every score divided by
        `temperature`."""
        self._check(scores, None, mask)
        t = temperature
        trans, start = self._trans()
        with torch.enable_grad(), torch.inference_mode(False):
            emissions = (scores.detach().float() / t).clone().requires_grad_(True)
            log_z = ForwardAlgorithm.apply(emissions, trans.detach() / t,
                                           start.detach() / t, self._end().detach() / t,
                                           mask)
            (grad,) = torch.autograd.grad(log_z.sum(), emissions)
        return grad

    def sequence_score(self, scores: Tensor, tags: Tensor, mask: Tensor | None,
                       trans: Tensor, start: Tensor) -> Tensor:
        """Score of the given tag sequences, (B,)."""
        return sequence_score(scores, tags, mask, trans, start, self._end())

    def log_partition(self, scores: Tensor, mask: Tensor | None, trans: Tensor,
                      start: Tensor) -> Tensor:
        """log of the sum over all tag sequences of exp(score), (B,)."""
        return ForwardAlgorithm.apply(scores, trans, start, self._end(), mask)

    @torch.no_grad()
    def viterbi(self, scores: Tensor, mask: Tensor | None) -> Tensor:
        """The best tag ids, (B, T), for emissions (B, T, K); positions past a length are
        meaningless."""
        self._check(scores, None, mask)
        return viterbi(scores, mask, *self.potentials())

    def potentials(self) -> tuple[Tensor, Tensor, Tensor]:
        """Transition (K, K), start (K,) and end (K,) scores, forbidden ones included:
        what Viterbi decoding reads beside the emissions (an ensemble averages them)."""
        trans, start = self._trans()
        return trans, start, self._end()

    # ------------------------------------------------------------ confidence

    def span_confidence(self, states: Tensor, mask: Tensor | None, tags: Tensor,
                        spans: Tensor) -> Tensor:
        """Marginal probability of each decoded span, (N,). tags (B, T) as decoded;
        spans (N, 3) long: row, start, end (exclusive) of a chunk in `tags`."""
        if self.chunks is None:
            raise ValueError("span confidences need the tag names: build the CRFHead "
                             "with chunks=chunk_relations(tags)")
        kinds = self.chunks[1].to(tags.device)[tags[spans[:, 0], spans[:, 1]]]  # (N,)
        return self.span_marginals(self(states), mask, torch.cat([spans, kinds[:, None]], 1))

    @torch.no_grad()
    @torch.autocast("cuda", enabled=False)
    @torch.autocast("cpu", enabled=False)
    def span_marginals(self, scores: Tensor, mask: Tensor | None, spans: Tensor) -> Tensor:
        """P(the tag sequence holds the chunk) for each span, (N,): emissions (B, T, K),
        spans (N, 4) long: row, start, end (exclusive), chunk kind (chunk_relations).
        The chunk opens with a tag of its kind that does not continue the tag before it,
        is continued up to `end`, and the tag at `end` (if any) does not continue it."""
        scores = scores.float()
        continues, kinds = (x.to(scores.device) for x in self.chunks)
        log_alpha, log_beta, log_z = self.forward_backward(scores, mask)
        trans, start = self._trans()
        shift = trans.max()
        exp_trans = torch.exp(trans - shift)  # (K, K)
        going_on, breaking = exp_trans * continues, exp_trans * ~continues
        T = scores.size(1)
        rows, first, end, kind = spans.unbind(1)  # each (N,)
        lengths = mask.sum(1)[rows] if mask is not None else torch.full_like(rows, T)
        # into the chunk: the prefix's last tag must not continue into its first tag
        before = _log_matmul(log_alpha[rows, (first - 1).clamp_min(0)], breaking, shift)
        v = torch.where((first > 0).unsqueeze(1), before, start) + scores[rows, first]
        v = v.masked_fill(kinds.unsqueeze(0) != kind.unsqueeze(1), float("-inf"))  # (N, K)
        for offset in range(1, int((end - first).max()) if len(spans) else 0):
            at = (first + offset).clamp_max(T - 1)
            inside = _log_matmul(v, going_on, shift) + scores[rows, at]
            v = torch.where((first + offset < end).unsqueeze(1), inside, v)
        # out of the chunk: the next tag must not continue it, then any suffix
        after = end.clamp_max(T - 1)
        out = _log_matmul(v, breaking, shift) + scores[rows, after] + log_beta[rows, after]
        total = torch.where(end >= lengths, torch.logsumexp(v + self._end(), 1),
                            torch.logsumexp(out, 1))  # (N,)
        return torch.exp(total - log_z[rows]).clamp(0.0, 1.0)

    def forward_backward(self, scores: Tensor, mask: Tensor | None
                         ) -> tuple[Tensor, Tensor, Tensor]:
        """log alpha (B, T, K): all prefixes ending in each tag, its emission included;
        log beta (B, T, K): all suffixes after each tag (transitions, emissions and the
        end score after it); log Z (B,). Past a length, alpha carries its last value and
        beta is the end score."""
        self._check(scores, None, mask)
        trans, start = self._trans()
        shift = trans.max()
        exp_trans = torch.exp(trans - shift)  # (K, K)
        B, T, K = scores.shape
        alphas = [start + scores[:, 0]]  # each (B, K)
        for t in range(1, T):
            alpha = _log_matmul(alphas[-1], exp_trans, shift) + scores[:, t]
            if mask is not None:
                alpha = torch.where(mask[:, t:t + 1], alpha, alphas[-1])
            alphas.append(alpha)
        end = self._end().expand(B, K)
        betas = [end]
        for t in range(T - 2, -1, -1):
            beta = _log_matmul(betas[-1] + scores[:, t + 1], exp_trans.T, shift)
            if mask is not None:
                beta = torch.where(mask[:, t + 1:t + 2], beta, end)
            betas.append(beta)
        log_z = torch.logsumexp(alphas[-1] + end, dim=1)
        return torch.stack(alphas, 1), torch.stack(betas[::-1], 1), log_z


def sequence_score(scores: Tensor, tags: Tensor, mask: Tensor | None, trans: Tensor,
                   start: Tensor, end: Tensor) -> Tensor:
    """The score of tag sequences (B, T) under emissions (B, T, K) and transition
    [from, to], start and end scores, (B,)."""
    emitted = scores.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
    moved = trans[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
    if mask is not None:
        emitted = emitted * mask
        moved = moved * mask[:, 1:]
        last = tags.gather(1, (mask.sum(1, keepdim=True) - 1)).squeeze(1)  # (B,)
    else:
        last = tags[:, -1]
    return start[tags[:, 0]] + emitted.sum(1) + moved.sum(1) + end[last]


@torch.no_grad()
def viterbi(scores: Tensor, mask: Tensor | None, trans: Tensor, start: Tensor,
            end: Tensor) -> Tensor:
    """The best tag ids (B, T) for emissions (B, T, K) under transition scores trans
    [from, to], start and end scores; positions past a length are meaningless."""
    B, T, K = scores.shape
    best = start + scores[:, 0]  # (B, K)
    pointers = []
    for t in range(1, T):
        candidates = best.unsqueeze(2) + trans  # (B, K_prev, K)
        value, pointer = candidates.max(dim=1)  # (B, K)
        value = value + scores[:, t]
        if mask is not None:  # past the end: carry the score, point to itself
            keep = mask[:, t:t + 1]
            value = torch.where(keep, value, best)
            pointer = torch.where(keep, pointer, torch.arange(K, device=scores.device))
        pointers.append(pointer)
        best = value
    tag = (best + end).argmax(dim=1)  # (B,)
    path = [tag]
    for pointer in reversed(pointers):
        tag = pointer.gather(1, tag.unsqueeze(1)).squeeze(1)
        path.append(tag)
    return torch.stack(path[::-1], dim=1)  # (B, T)


@torch.no_grad()
def k_best_viterbi(scores: Tensor, mask: Tensor | None, trans: Tensor, start: Tensor,
                   end: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The n best tag sequences (B, n, T) for emissions (B, T, K) and their scores (B, n),
    best first; positions past a length repeat the last tag. Potentials of -inf make
    sequences impossible (`without_forbidden`): where fewer than n sequences are possible
    (at most K ** length), the ranks beyond them score -inf and their tags are
    meaningless. Each step keeps, for every tag, the n best prefixes ending in it, with
    back-pointers to (previous tag, rank): n = 1 is `viterbi`, the same sums in the same
    order, and the sequences found are distinct."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    B, T, K = scores.shape
    rows = max(1, K_BEST_BUDGET // (K * K * n))
    if B > rows:  # one slice of rows at a time: each row's answer is its own
        parts = [k_best_viterbi(scores[i:i + rows], None if mask is None else
                                mask[i:i + rows], trans, start, end, n)
                 for i in range(0, B, rows)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    best = scores.new_full((B, K, n), float("-inf"))  # (B, K, n): the n best prefixes
    best[:, :, 0] = start + scores[:, 0]  # one prefix of one tag
    itself = torch.arange(K * n, device=scores.device).view(K, n)  # entries: tag * n + rank
    pointers = []
    for t in range(1, T):
        candidates = best.unsqueeze(3) + trans.view(1, K, 1, K)  # (B, K_prev, n, K)
        candidates = candidates.flatten(1, 2).transpose(1, 2)  # (B, K, K_prev * n)
        value, pointer = candidates.topk(n, dim=2)  # (B, K, n), sorted, best first
        value = value + scores[:, t].unsqueeze(2)
        if mask is not None:  # past the end: carry the prefixes, each points to itself
            keep = mask[:, t].view(B, 1, 1)
            value = torch.where(keep, value, best)
            pointer = torch.where(keep, pointer, itself)
        pointers.append(pointer)
        best = value
    total, entry = (best + end.view(1, K, 1)).flatten(1).topk(n, dim=1)  # (B, n)
    path = [entry]
    for pointer in reversed(pointers):
        entry = pointer.flatten(1).gather(1, entry)  # (B, n): the entry one step back
        path.append(entry)
    return torch.stack(path[::-1], dim=2) // n, total  # (B, n, T), (B, n)


def without_forbidden(trans: Tensor, start: Tensor, end: Tensor
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """Potentials (as `CRFHead.potentials` gives them) with the scheme's forbidden
    transitions, first and last tags at -inf: impossible rather than improbable, so that
    k-best Viterbi lists only sequences the scheme allows. Learned scores stay far above
    FORBIDDEN / 2 (an ensemble's members share their training data, so they forbid the
    same ones, and the mean of FORBIDDEN is FORBIDDEN)."""
    return tuple(torch.where(p > FORBIDDEN / 2, p, float("-inf")) for p in (trans, start, end))


def _log_matmul(log_v: Tensor, exp_trans: Tensor, shift: Tensor) -> Tensor:
    """log(exp(log_v) @ exp(trans)) for (N, K) log-values and exp(trans - shift): a
    matrix product in probability space, each row scaled by its maximum first."""
    top = log_v.max(dim=1, keepdim=True).values
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # an empty row
    return torch.log(torch.exp(log_v - top) @ exp_trans) + top + shift


class ForwardAlgorithm(torch.autograd.Function):
    """log Z of a linear-chain CRF, with a hand-written backward pass.

    Forward: in probability space, `alpha` holds each step's prefix distribution over the
    current tag, renormalised at every step, and the logs of the normalisers add up to
    log Z. Emissions are exponentiated once for all steps after subtracting each step's
    maximum, so nothing overflows; forbidden transitions are exactly 0.
    Backward: the backward recursion gives the tag marginals (the gradient with respect to
    the emissions, start and end scores) and the transition marginals summed over steps
    (the gradient with respect to the transitions), in one einsum. Compared with letting
    autograd record the loop, this halves the number of small operations per step, which
    dominate the cost at ATIS sizes. Padded steps (mask False) carry the previous state.
    """

    @staticmethod
    def forward(ctx, scores: Tensor, trans: Tensor, start: Tensor, end: Tensor,
                mask: Tensor | None) -> Tensor:
        B, T, K = scores.shape
        shift = trans.max()
        exp_trans = torch.exp(trans - shift)  # (K, K)
        top = scores.max(dim=2, keepdim=True).values  # (B, T, 1)
        emit = torch.exp(scores - top)  # (B, T, K), each step's best tag at 1
        first = start + scores[:, 0]
        first_top = first.max(dim=1, keepdim=True).values  # (B, 1)
        alpha = torch.exp(first - first_top)
        norm = alpha.sum(dim=1, keepdim=True)
        alphas = [alpha / norm]  # each (B, K), summing to 1
        log_z = (torch.log(norm) + first_top).squeeze(1)  # (B,)
        for t in range(1, T):
            step = (alphas[-1] @ exp_trans) * emit[:, t]
            norm = step.sum(dim=1, keepdim=True).clamp_min(1e-30)
            gain = (torch.log(norm) + top[:, t] + shift).squeeze(1)
            alpha = step / norm
            if mask is not None:  # past an utterance's end: carry alpha, add nothing
                real = mask[:, t]
                alpha = torch.where(real.unsqueeze(1), alpha, alphas[-1])
                gain = gain * real
            alphas.append(alpha)
            log_z = log_z + gain
        end_top = end.max()
        exp_end = torch.exp(end - end_top)  # (K,)
        log_z = log_z + torch.log(alphas[-1] @ exp_end) + end_top
        ctx.save_for_backward(torch.stack(alphas, dim=1), emit, exp_trans, exp_end, mask)
        return log_z

    @staticmethod
    def backward(ctx, grad: Tensor):
        alphas, emit, exp_trans, exp_end, mask = ctx.saved_tensors  # alphas (B, T, K)
        B, T, K = alphas.shape
        # beta_t(i) is proportional to the sum over all suffixes from tag i at step t
        beta = (exp_end / exp_end.sum()).expand(B, K)
        betas = [beta]
        for t in range(T - 1, 0, -1):
            back = (emit[:, t] * beta) @ exp_trans.T  # (B, K)
            back = back / back.sum(dim=1, keepdim=True).clamp_min(1e-30)
            beta = back if mask is None else torch.where(mask[:, t].unsqueeze(1), back, beta)
            betas.append(beta)
        betas = torch.stack(betas[::-1], dim=1)  # (B, T, K)
        marginals = alphas * betas
        marginals = marginals / marginals.sum(dim=2, keepdim=True).clamp_min(1e-30)
        if mask is not None:
            marginals = marginals * mask.unsqueeze(2)
        weighted = marginals * grad.view(B, 1, 1)
        # transitions t-1 -> t: alpha_{t-1}(i) E_ij emit_t(j) beta_t(j), normalised per step
        incoming = emit[:, 1:] * betas[:, 1:]  # (B, T-1, K)
        total = ((alphas[:, :-1] @ exp_trans) * incoming).sum(dim=2).clamp_min(1e-30)
        scale = grad.view(B, 1) / total  # (B, T-1)
        if mask is not None:
            scale = scale * mask[:, 1:]
        grad_trans = exp_trans * torch.einsum("bti,btj->ij", alphas[:, :-1] * scale.unsqueeze(2),
                                              incoming)
        if mask is None:
            last = weighted[:, -1]
        else:
            last = weighted.gather(1, (mask.sum(1) - 1).view(B, 1, 1).expand(B, 1, K)).squeeze(1)
        return weighted, grad_trans, weighted[:, 0].sum(0), last.sum(0), None
