# The training program of lich99/Stock_CNN (notebooks/train.ipynb) as a script, re-implemented
# for convlab's real-program tests: that repository has no licence, so this is our own code
# following the notebook's structure (see ../README.md for what differs). Images: the
# authors' uint8 memmaps (N, 64, 60), one file per year; labels: the 20-day return's sign.
import argparse
import datetime
import os
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

import torch
import torch.nn as nn
from torch.utils.data import Dataset
from torch.utils.data import DataLoader
from torch.utils.data import random_split

import baseline

IMAGE_WIDTH = {5: 15, 20: 60, 60: 180}
IMAGE_HEIGHT = {5: 32, 20: 64, 60: 96}


def image_file(data_dir, year):
    return os.path.join(data_dir, f"20d_month_has_vb_[20]_ma_{year}_images.dat")


def label_file(data_dir, year):
    return os.path.join(data_dir, f"20d_month_has_vb_[20]_ma_{year}_labels_w_delay.csv")


def load_years(data_dir, years):
    images = []
    label_df = []
    for year in years:
        images.append(np.memmap(image_file(data_dir, year), dtype=np.uint8, mode="r").reshape(
            (-1, IMAGE_HEIGHT[20], IMAGE_WIDTH[20])))
        label_df.append(pd.read_csv(label_file(data_dir, year)))
    return np.concatenate(images), pd.concat(label_df)


class MyDataset(Dataset):

    def __init__(self, img, label):
        self.img = torch.Tensor(img.copy())
        self.label = torch.Tensor(label)
        self.len = len(img)

    def __len__(self):
        return self.len

    def __getitem__(self, idx):
        return self.img[idx], self.label[idx]


def make_datasets(images, label_df, use_random_split):
    up = (label_df.Ret_20d > 0).values
    train_val_ratio = 0.7
    if not use_random_split:
        split_idx = int(images.shape[0] * train_val_ratio)
        return MyDataset(images[:split_idx], up[:split_idx]), MyDataset(images[split_idx:], up[split_idx:])
    dataset = MyDataset(images, up)
    n_train = int(dataset.len * train_val_ratio)
    return random_split(dataset, [n_train, dataset.len - n_train],
                        generator=torch.Generator().manual_seed(42))


def init_weights(m):
    if isinstance(m, nn.Linear):
        torch.nn.init.xavier_uniform_(m.weight)
        m.bias.data.fill_(0.)
    elif isinstance(m, nn.Conv2d):
        torch.nn.init.xavier_uniform_(m.weight)


def train_loop(dataloader, net, loss_fn, optimizer, device):
    running_loss = 0.0
    current = 0
    net.train()
    with tqdm(dataloader) as t:
        for batch, (X, y) in enumerate(t):
            X = X.to(device)
            y = y.to(device)
            y_pred = net(X)
            loss = loss_fn(y_pred, y.long())

            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            running_loss = (len(X) * loss.item() + running_loss * current) / (len(X) + current)
            current += len(X)
            t.set_postfix({"running_loss": running_loss})
    return running_loss


def val_loop(dataloader, net, loss_fn, device):
    running_loss = 0.0
    current = 0
    net.eval()
    with torch.no_grad():
        with tqdm(dataloader) as t:
            for batch, (X, y) in enumerate(t):
                X = X.to(device)
                y = y.to(device)
                y_pred = net(X)
                loss = loss_fn(y_pred, y.long())
                running_loss = (len(X) * loss.item() + running_loss * current) / (len(X) + current)
                current += len(X)
    return running_loss


def main(argv=None):
    parser = argparse.ArgumentParser(description="Stock chart CNN (20-day images)")
    parser.add_argument("--data", default="../monthly_20d")
    parser.add_argument("--years", type=int, nargs="+", default=list(range(1993, 2001)))
    parser.add_argument("--out", default="../pt")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--random-split", action="store_true")
    parser.add_argument("--early-stopping-epoch", type=int, default=5)
    args = parser.parse_args(argv)

    torch.manual_seed(42)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    images, label_df = load_years(args.data, args.years)
    print(images.shape)
    print(label_df.shape)
    train_dataset, val_dataset = make_datasets(images, label_df, args.random_split)
    train_dataloader = DataLoader(train_dataset, batch_size=args.batch_size, shuffle=True, pin_memory=True)
    val_dataloader = DataLoader(val_dataset, batch_size=2 * args.batch_size, shuffle=False, pin_memory=True)

    net = baseline.Net().to(device)
    net.apply(init_weights)
    count = 0
    for name, parameters in net.named_parameters():
        print(name, ":", parameters.size())
        count += parameters.numel()
    print("total_parameters : {}".format(count))
    if device == "cuda" and torch.cuda.device_count() > 1:
        net = nn.DataParallel(net)

    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)

    min_val_loss = 1e9
    last_min_ind = -1
    run_dir = os.path.join(args.out, datetime.datetime.now().strftime("%Y%m%d_%H%M%S"))
    os.makedirs(run_dir)
    for t in range(args.epochs):
        print(f"Epoch {t}\n-------------------------------")
        time.sleep(0.2)
        train_loss = train_loop(train_dataloader, net, loss_fn, optimizer, device)
        val_loss = val_loop(val_dataloader, net, loss_fn, device)
        print(f"train_loss {train_loss:.6f} val_loss {val_loss:.6f}")
        torch.save(net.state_dict(), os.path.join(
            run_dir, "baseline_epoch_{}_train_{:5f}_val_{:5f}.pt".format(t, train_loss, val_loss)))
        if val_loss < min_val_loss:
            last_min_ind = t
            min_val_loss = val_loss
        elif t - last_min_ind >= args.early_stopping_epoch:
            break

    print("Done!")
    print("Best epoch: {}, val_loss: {}".format(last_min_ind, min_val_loss))


if __name__ == "__main__":
    main()
