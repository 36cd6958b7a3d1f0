"""Jordan recurrent network (Jordan 1986; Mesnil et al. 2015 for slot filling).

Where an Elman network feeds back its hidden state, a Jordan network feeds back its
previous *output*, the tag distribution:

    h_t = act(W x_t + U y_{t-1} + b),    y_t = softmax(V h_t + c),    y_0 = 0

Each layer and direction has its own output layer V. In a one-directional network the top
layer's V is also the tagger's tag layer (encoders.build_encoder hands it to the head), so
the distribution fed back is the model's prediction, as in the papers. Layers and
directions are stacked by encoders.StackedEncoder: a bidirectional network runs one such
recurrence in each direction (the backward one over the reversed utterance) and
concatenates their hidden states; stacked layers read the hidden states of the layer
below.

The recurrence is inherently sequential (each step needs the previous softmax), so it
runs step by step; the input projections of all steps are one matmul up front.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class JordanLayer(nn.Module):
    """One direction of one layer: (B, T, I) -> (B, T, H)."""

    def __init__(self, input_size: int, hidden_size: int, num_tags: int, nonlinearity: str,
                 bias: bool) -> None:
        super().__init__()
        self.input = nn.Linear(input_size, hidden_size, bias=bias)  # W, b
        self.recurrent = nn.Linear(num_tags, hidden_size, bias=False)  # U
        self.output = nn.Linear(hidden_size, num_tags, bias=bias)  # V, c
        self.act = torch.tanh if nonlinearity == "tanh" else torch.relu

    def forward(self, x: Tensor) -> Tensor:
        inputs = self.input(x)  # (B, T, H): W x_t + b for every step at once
        h = self.act(inputs[:, 0])  # (B, H): y_0 = 0
        steps = [h]
        for t in range(1, inputs.size(1)):
            y = torch.softmax(self.output(h), dim=-1)  # (B, K) previous output
            h = self.act(inputs[:, t] + self.recurrent(y))  # (B, H)
            steps.append(h)
        return torch.stack(steps, dim=1)  # (B, T, H)
