"""The encoder-decoder's tag head: an attention decoder over aligned inputs (after Liu &
Lane 2016).

The tagger's LSTM encoder (bidirectional when configured) reads the words. This
one-directional LSTM decoder then emits one tag per word; at step t it reads the aligned
encoder state h_t, the embedding of the previous tag (the gold one while training, its
own prediction when decoding) and an attention summary of all encoder states:

    s_t = LSTMCell([h_t; E y_{t-1}; a_t], s_{t-1}),   a_t = sum_j softmax_j(h_j . W s_{t-1}) h_j
    p(y_t) = softmax(V [s_t; a_t; h_t])

Decoding is greedy, step by step, since each tag depends on the previous one; a span's
confidence is the product of the greedy steps' probabilities of its tags.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotfill.models.heads import span_products

TAG_EMBEDDING = 32  # size of the previous-tag embedding fed to the decoder


class AttentionDecoder(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_tags: int, bias: bool) -> None:
        super().__init__()
        size = input_size  # encoder states (B, T, S)
        self.tag_embedding = nn.Embedding(num_tags + 1, TAG_EMBEDDING)  # last id: <start>
        self.start_tag = num_tags
        self.init = nn.Linear(size, 2 * hidden_size)  # s_0, cell_0 from the mean state
        self.cell = nn.LSTMCell(2 * size + TAG_EMBEDDING, hidden_size, bias=bias)
        self.attention = nn.Linear(hidden_size, size, bias=False)  # W
        self.out = nn.Linear(hidden_size + 2 * size, num_tags)  # V
        self.label_smoothing = 0.0  # a training option (train.label_smoothing)

    def forward(self, states: Tensor, mask: Tensor | None = None) -> Tensor:
        """The tag scores of greedy decoding, (B, T, K)."""
        return self._steps(states, mask, None)[0]

    def loss(self, states: Tensor, tags: Tensor, mask: Tensor | None) -> Tensor:
        """Mean cross-entropy of the teacher-forced tag scores over real tokens."""
        scores, _ = self._steps(states, mask, tags)
        if mask is not None:
            scores, tags = scores[mask], tags[mask]
        return F.cross_entropy(scores.reshape(-1, scores.size(-1)), tags.reshape(-1),
                               label_smoothing=self.label_smoothing)

    def decode(self, states: Tensor, mask: Tensor | None) -> Tensor:
        return self._steps(states, mask, None)[1]

    def span_confidence(self, states: Tensor, mask: Tensor | None, tags: Tensor,
                        spans: Tensor) -> Tensor:
        """Each span's confidence, (N,): the product of the decoder's step probabilities
        of its tags. Fed its own greedy `tags`, the decoder retraces the greedy steps."""
        scores, _ = self._steps(states, mask, tags)  # (B, T, K)
        log_probs = scores.float().log_softmax(-1).gather(2, tags.unsqueeze(2)).squeeze(2)
        return span_products(log_probs, spans)

    def _steps(self, states: Tensor, mask: Tensor | None,
               gold: Tensor | None) -> tuple[Tensor, Tensor]:
        """Tag scores (B, T, K) and chosen tags (B, T); teacher-forced when `gold`."""
        B, T, _ = states.shape
        real = mask if mask is not None else torch.ones(B, T, dtype=torch.bool,
                                                         device=states.device)
        mean = (states * real.unsqueeze(2)).sum(1) / real.sum(1, keepdim=True)  # (B, S)
        s, c = torch.tanh(self.init(mean)).chunk(2, dim=1)  # (B, H) each
        previous = torch.full((B,), self.start_tag, dtype=torch.long, device=states.device)
        scores, chosen = [], []
        for t in range(T):
            weights = torch.bmm(states, self.attention(s).unsqueeze(2)).squeeze(2)  # (B, T)
            weights = weights.masked_fill(~real, float("-inf")).softmax(dim=1)
            context = torch.bmm(weights.unsqueeze(1), states).squeeze(1)  # (B, S)
            step_in = torch.cat([states[:, t], self.tag_embedding(previous), context], dim=1)
            s, c = self.cell(step_in, (s, c))  # (B, H)
            score = self.out(torch.cat([s, context, states[:, t]], dim=1))  # (B, K)
            best = score.argmax(dim=1)
            scores.append(score)
            chosen.append(best)
            previous = gold[:, t] if gold is not None else best
        return torch.stack(scores, dim=1), torch.stack(chosen, dim=1)
