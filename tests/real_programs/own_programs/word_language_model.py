"""A word-level language model trained on a folder of text files.

A typical PyTorch script in the style of the classic word-language-model example: a
dictionary and corpus of its own over ``train.txt`` / ``valid.txt`` / ``test.txt``, the token
stream cut into ``bsz`` columns and read ``bptt`` steps at a time, a recurrent network
(LSTM, GRU or Elman RNN) with optionally tied input and output embeddings, truncated
back-propagation through time with the hidden state detached between batches, gradient
clipping, a hand-written SGD update, learning-rate annealing when the validation loss stops
improving, a best-model checkpoint, and text sampled from the trained model at the end.
"""

import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Dictionary:
    """Word <-> index, in order of first appearance."""

    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class Corpus:
    """The three splits of a text folder as 1-D tensors of word indices (``<eos>`` ends
    every line)."""

    def __init__(self, path):
        self.dictionary = Dictionary()
        self.train = self.tokenize(os.path.join(path, "train.txt"))
        self.valid = self.tokenize(os.path.join(path, "valid.txt"))
        self.test = self.tokenize(os.path.join(path, "test.txt"))

    def tokenize(self, path):
        ids = []
        with open(path, encoding="utf8") as f:
            for line in f:
                for word in line.split() + ["<eos>"]:
                    ids.append(self.dictionary.add_word(word))
        return torch.tensor(ids, dtype=torch.int64)


def batchify(data, bsz, device):
    """Cut the token stream into ``bsz`` equal columns (the remainder is dropped)."""
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous().to(device)


def get_batch(source, i, bptt):
    """Rows ``i .. i+bptt`` as input, the same rows shifted by one (flattened) as target."""
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].reshape(-1)
    return data, target


def repackage_hidden(h):
    """Cut the hidden state off from the graph of the previous batch."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


class RNNModel(nn.Module):
    """Embedding -> recurrent layers -> linear decoder, dropout between them."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ("LSTM", "GRU"):
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        elif rnn_type in ("RNN_TANH", "RNN_RELU"):
            nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type]
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
        else:
            raise ValueError(f"--model must be LSTM, GRU, RNN_TANH or RNN_RELU, got {rnn_type}")
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            # Press & Wolf (2017): one matrix for the input and output embeddings.
            if nhid != ninp:
                raise ValueError("--tied needs --nhid equal to --emsize")
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output).view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == "LSTM":
            return (
                weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid),
            )
        return weight.new_zeros(self.nlayers, bsz, self.nhid)


def train(args, model, train_data, criterion, lr, epoch):
    """One pass over ``train_data`` with plain SGD at ``lr``; returns the mean batch loss."""
    model.train()
    total_loss, all_loss, batches = 0.0, 0.0, 0
    start_time = time.time()
    hidden = model.init_hidden(args.batch_size)
    n_batches = (len(train_data) - 1) // args.bptt
    for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
        data, targets = get_batch(train_data, i, args.bptt)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        # Clipping keeps the exploding gradients of long recurrences in check.
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        total_loss += loss.item()
        all_loss += loss.item()
        batches += 1
        if (batch + 1) % args.log_interval == 0:
            cur_loss = total_loss / args.log_interval
            elapsed = time.time() - start_time
            print(
                f"| epoch {epoch:3d} | {batch:5d}/{n_batches:5d} batches | lr {lr:02.2f} | "
                f"ms/batch {elapsed * 1000 / args.log_interval:.2f} | "
                f"loss: {cur_loss:5.2f} | ppl {math.exp(cur_loss):8.2f}"
            )
            total_loss = 0.0
            start_time = time.time()
    return all_loss / batches


def evaluate(model, data_source, criterion, eval_batch_size, bptt):
    """The mean per-token loss over ``data_source``."""
    model.eval()
    total_loss = 0.0
    hidden = model.init_hidden(eval_batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i, bptt)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def generate(model, corpus, device, args):
    """Sample ``args.words`` words from the model, one at a time, into ``args.outf``."""
    model.eval()
    ntokens = len(corpus.dictionary)
    hidden = model.init_hidden(1)
    input = torch.randint(ntokens, (1, 1), dtype=torch.long).to(device)
    with open(args.outf, "w", encoding="utf8") as outf, torch.no_grad():
        for i in range(args.words):
            output, hidden = model(input, hidden)
            word_weights = output.squeeze().div(args.temperature).exp().cpu()
            word_idx = torch.multinomial(word_weights, 1)[0]
            input.fill_(word_idx)
            word = corpus.dictionary.idx2word[word_idx]
            outf.write(word + ("\n" if i % 20 == 19 else " "))
            if i % args.log_interval == 0:
                print(f"| Generated {i}/{args.words} words")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Word-level language model")
    parser.add_argument("--data", default="../data/text", help="folder of train/valid/test.txt")
    parser.add_argument("--model", default="LSTM", help="LSTM, GRU, RNN_TANH or RNN_RELU")
    parser.add_argument("--emsize", type=int, default=200, help="word embedding size")
    parser.add_argument("--nhid", type=int, default=200, help="hidden units per layer")
    parser.add_argument("--nlayers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=20.0, help="initial learning rate")
    parser.add_argument("--clip", type=float, default=0.25, help="gradient norm clip")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch_size", type=int, default=20, metavar="N")
    parser.add_argument("--bptt", type=int, default=35, help="sequence length")
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--tied", action="store_true", help="tie the word embedding and softmax")
    parser.add_argument("--seed", type=int, default=1111)
    parser.add_argument("--no-accel", action="store_true", help="stay on the CPU")
    parser.add_argument("--log-interval", type=int, default=200, metavar="N")
    parser.add_argument("--save", default="model.pt", help="where the best model goes")
    parser.add_argument("--words", type=int, default=1000, help="words to generate")
    parser.add_argument("--outf", default="generated.txt", help="where generated text goes")
    parser.add_argument("--temperature", type=float, default=1.0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    use_accel = not args.no_accel and torch.accelerator.is_available()
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")

    corpus = Corpus(args.data)
    eval_batch_size = 10
    train_data = batchify(corpus.train, args.batch_size, device)
    val_data = batchify(corpus.valid, eval_batch_size, device)
    test_data = batchify(corpus.test, eval_batch_size, device)

    ntokens = len(corpus.dictionary)
    model = RNNModel(
        args.model, ntokens, args.emsize, args.nhid, args.nlayers, args.dropout, args.tied
    ).to(device)
    criterion = nn.NLLLoss()

    lr = args.lr
    best_val_loss = None
    for epoch in range(1, args.epochs + 1):
        epoch_start_time = time.time()
        train(args, model, train_data, criterion, lr, epoch)
        val_loss = evaluate(model, val_data, criterion, eval_batch_size, args.bptt)
        print("-" * 89)
        print(
            f"| end of epoch {epoch:3d} | time: {time.time() - epoch_start_time:.2f}s | "
            f"valid loss: {val_loss:5.2f} | valid ppl {math.exp(val_loss):8.2f}"
        )
        print("-" * 89)
        if best_val_loss is None or val_loss < best_val_loss:
            with open(args.save, "wb") as f:
                torch.save(model.state_dict(), f)
            best_val_loss = val_loss
        else:
            # No improvement on the validation set: anneal the learning rate.
            lr /= 4.0

    with open(args.save, "rb") as f:
        model.load_state_dict(torch.load(f))
    test_loss = evaluate(model, test_data, criterion, eval_batch_size, args.bptt)
    print("=" * 89)
    print(f"| End of training | test loss: {test_loss:5.2f} | test ppl {math.exp(test_loss):8.2f}")
    print("=" * 89)

    generate(model, corpus, device, args)


if __name__ == "__main__":
    main()
