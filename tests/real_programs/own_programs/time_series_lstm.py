"""Predicting sine waves with two stacked LSTM cells stepped by hand.

A typical PyTorch script: phase-shifted sine waves as training data, a model that runs two
``nn.LSTMCell`` layers over the time steps in a Python loop (zero initial states, outputs
stacked along time) and then keeps going ``future`` steps by feeding its own predictions
back in, mean-squared error, Adam, a test pass that predicts past the end of the input, and
a checkpoint.
"""

import argparse

import torch
import torch.nn as nn
import torch.optim as optim


def sine_waves(count, length, period, generator):
    """``count`` sine waves of ``length`` steps with random phases, ``(count, length)``."""
    shift = torch.randint(-4 * period, 4 * period, (count, 1), generator=generator)
    steps = torch.arange(length).unsqueeze(0) + shift
    return torch.sin(steps.float() / period)


class Sequence(nn.Module):
    """Two LSTM cells and a linear read-out, one time step at a time."""

    def __init__(self, hidden=51):
        super().__init__()
        self.hidden = hidden
        self.lstm1 = nn.LSTMCell(1, hidden)
        self.lstm2 = nn.LSTMCell(hidden, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, input, future=0):
        outputs = []
        batch = input.size(0)
        h_t = torch.zeros(batch, self.hidden, dtype=input.dtype, device=input.device)
        c_t = torch.zeros(batch, self.hidden, dtype=input.dtype, device=input.device)
        h_t2 = torch.zeros(batch, self.hidden, dtype=input.dtype, device=input.device)
        c_t2 = torch.zeros(batch, self.hidden, dtype=input.dtype, device=input.device)
        output = None
        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs.append(output)
        # Past the input: the model's own prediction is the next input.
        for _ in range(future):
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs.append(output)
        return torch.stack(outputs, 1).squeeze(2)


def train_step(model, optimizer, criterion, inputs, targets):
    """One optimisation step on the whole training set; returns the loss."""
    model.train()
    optimizer.zero_grad()
    loss = criterion(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def predict(model, criterion, inputs, targets, future):
    """Predictions ``future`` steps past ``inputs`` and the loss on the known part."""
    model.eval()
    with torch.no_grad():
        pred = model(inputs, future=future)
        loss = criterion(pred[:, : targets.size(1)], targets)
    return pred, loss.item()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Sine-wave prediction with LSTM cells")
    parser.add_argument("--steps", type=int, default=15, help="optimisation steps")
    parser.add_argument("--waves", type=int, default=100)
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--period", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=51)
    parser.add_argument("--future", type=int, default=1000, help="steps predicted past the end")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-accel", action="store_true", help="stay on the CPU")
    parser.add_argument("--save", default="sine_lstm.pt")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    use_accel = not args.no_accel and torch.accelerator.is_available()
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")

    data = sine_waves(args.waves, args.length, args.period, torch.Generator().manual_seed(2))
    data = data.to(device)
    # The first three waves are held out; the target is the input one step later.
    inputs, targets = data[3:, :-1], data[3:, 1:]
    test_inputs, test_targets = data[:3, :-1], data[:3, 1:]

    model = Sequence(args.hidden).to(device)
    criterion = nn.MSELoss()
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    for step in range(args.steps):
        loss = train_step(model, optimizer, criterion, inputs, targets)
        print(f"step {step} loss: {loss:.6f}")
        pred, test_loss = predict(model, criterion, test_inputs, test_targets, args.future)
        print(f"test loss: {test_loss:.6f}")
    print(f"predicted {pred.size(1)} steps, last values {pred[:, -1].cpu().tolist()}")

    torch.save(model.state_dict(), args.save)
    restored = Sequence(args.hidden).to(device)
    restored.load_state_dict(torch.load(args.save))
    _, check = predict(restored, criterion, test_inputs, test_targets, 0)
    print(f"restored checkpoint test loss: {check:.6f}")


if __name__ == "__main__":
    main()
