"""Classifying variable-length token sequences with a bidirectional GRU.

A typical PyTorch script: a synthetic dataset of token sequences of random length whose
class is a property of the tokens, padded per batch in the DataLoader's ``collate_fn``, an
embedding with a padding index, a two-layer bidirectional GRU (batch first) whose last
forward and backward states are joined and classified, Adam, accuracy and a checkpoint.
"""

import argparse

import torch
import torch.nn as nn
import torch.optim as optim
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

PAD = 0


class TokenSequences(Dataset):
    """``size`` sequences of tokens ``1 .. vocab-1`` with lengths in ``[min_len, max_len]``;
    a sequence's class is its first token modulo ``classes``."""

    def __init__(self, size, vocab, classes, min_len, max_len, generator):
        lengths = torch.randint(min_len, max_len + 1, (size,), generator=generator)
        self.sequences = [torch.randint(1, vocab, (int(n),), generator=generator) for n in lengths]
        self.labels = [int(s[0]) % classes for s in self.sequences]

    def __len__(self):
        return len(self.sequences)

    def __getitem__(self, index):
        return self.sequences[index], self.labels[index]


def collate(batch):
    """Pad a list of ``(sequence, label)`` pairs into one ``(batch, longest)`` tensor."""
    sequences, labels = zip(*batch)
    padded = pad_sequence(list(sequences), batch_first=True, padding_value=PAD)
    return padded, torch.tensor(labels)


class GRUClassifier(nn.Module):
    """Embedding -> bidirectional GRU -> [last forward state, last backward state] -> linear."""

    def __init__(self, vocab, classes, embed=16, hidden=32, num_layers=2, dropout=0.2):
        super().__init__()
        self.hidden, self.num_layers = hidden, num_layers
        self.embedding = nn.Embedding(vocab, embed, padding_idx=PAD)
        self.gru = nn.GRU(
            embed,
            hidden,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout,
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * hidden, classes)

    def forward(self, tokens):
        _, h_n = self.gru(self.embedding(tokens))
        # h_n is (num_layers * 2, batch, hidden): split the layer and direction axes and
        # keep the top layer's forward (index 0) and backward (index 1) states.
        h_n = h_n.view(self.num_layers, 2, tokens.size(0), self.hidden)
        top = h_n[-1]
        features = torch.cat([top[0], top[1]], dim=1)
        return self.fc(self.dropout(features))


def train_epoch(model, loader, criterion, optimizer, device, epoch, log_interval):
    """One pass over ``loader``; returns the mean batch loss and the accuracy."""
    model.train()
    total, correct, seen = 0.0, 0, 0
    for step, (tokens, labels) in enumerate(loader):
        tokens, labels = tokens.to(device), labels.to(device)
        optimizer.zero_grad()
        logits = model(tokens)
        loss = criterion(logits, labels)
        loss.backward()
        optimizer.step()
        total += loss.item()
        correct += (logits.argmax(dim=1) == labels).sum().item()
        seen += labels.size(0)
        if step % log_interval == 0:
            print(f"Epoch {epoch} batch {step}/{len(loader)} loss: {loss.item():.4f}")
    return total / len(loader), correct / seen


def evaluate(model, loader, criterion, device):
    """Mean per-sequence loss and accuracy over ``loader``."""
    model.eval()
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for tokens, labels in loader:
            tokens, labels = tokens.to(device), labels.to(device)
            logits = model(tokens)
            total += criterion(logits, labels).item() * labels.size(0)
            correct += (logits.argmax(dim=1) == labels).sum().item()
            seen += labels.size(0)
    return total / seen, correct / seen


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Bidirectional GRU sequence classifier")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--vocab", type=int, default=30)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--max-len", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--log-interval", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-accel", action="store_true", help="stay on the CPU")
    parser.add_argument("--save", default="gru_classifier.pt")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    use_accel = not args.no_accel and torch.accelerator.is_available()
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")

    generator = torch.Generator().manual_seed(args.seed)
    shape = (args.vocab, args.classes, 2, args.max_len, generator)
    train_set = TokenSequences(args.train_size, *shape)
    test_set = TokenSequences(args.test_size, *shape)
    train_loader = DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, collate_fn=collate
    )
    test_loader = DataLoader(test_set, batch_size=args.batch_size, collate_fn=collate)

    model = GRUClassifier(args.vocab, args.classes, hidden=args.hidden, dropout=args.dropout).to(
        device
    )
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    best = -1.0
    for epoch in range(1, args.epochs + 1):
        loss, acc = train_epoch(
            model, train_loader, criterion, optimizer, device, epoch, args.log_interval
        )
        test_loss, test_acc = evaluate(model, test_loader, criterion, device)
        print(
            f"Epoch {epoch}: train loss: {loss:.4f} acc {100 * acc:.1f}% | "
            f"test loss: {test_loss:.4f} acc {100 * test_acc:.1f}%"
        )
        if test_acc > best:
            best = test_acc
            torch.save(model.state_dict(), args.save)

    model.load_state_dict(torch.load(args.save))
    _, acc = evaluate(model, test_loader, criterion, device)
    print(f"Best checkpoint: test accuracy {100 * acc:.1f}%")


if __name__ == "__main__":
    main()
