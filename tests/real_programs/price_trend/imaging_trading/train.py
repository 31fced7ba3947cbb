# The training script of nhlben/Algorithmic-Trading-Based-on-Imaging-Price-Trends (train.py),
# re-implemented for convlab's real-program tests: that repository has no licence, so this is
# our own code following its structure (see ../README.md for what differs): argparse options,
# an early stopper, a seeded 70/30 random_split, Adam with weight decay (or AdamW, SGD,
# RMSprop), per-epoch loss and accuracy, the best model saved, the history written as CSV.
import argparse
import os

import numpy as np
import pandas as pd

import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

import model

device = 'cuda' if torch.cuda.is_available() else 'cpu'
torch.manual_seed(7600)
np.random.seed(7600)


# Class for early stop epoch
class EarlyStopper:
    def __init__(self, patience=1, min_delta=0):
        self.patience = patience
        self.min_delta = min_delta
        self.counter = 0
        self.min_validation_loss = float('inf')

    def early_stop(self, validation_loss):
        if validation_loss < self.min_validation_loss:
            self.min_validation_loss = validation_loss
            self.counter = 0
        elif validation_loss > (self.min_validation_loss + self.min_delta):
            self.counter += 1
            if self.counter >= self.patience:
                return True
        return False


def run_epoch(model, loss_fn, dataloader, optimizer=None):
    # one pass over the data: trains when given an optimizer, evaluates otherwise
    total_loss, correct, seen = 0.0, 0, 0
    for images, labels in dataloader:
        images, labels = images.to(device), labels.to(device)
        outputs = model(images)
        loss = loss_fn(outputs, labels)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        total_loss += loss.item() * labels.size(0)
        correct += (torch.argmax(outputs, dim=1) == labels).sum().item()
        seen += labels.size(0)
    return total_loss / seen, correct / seen


def train(model, num_epoch, loss_fn, optimizer, train_dataloader, val_dataloader, early_stopper, save_path):
    train_loss_list = []
    val_loss_list = []
    train_accuracy_list = []
    val_accuracy_list = []
    min_val_loss = 10
    for epoch in range(num_epoch):
        model.train()
        train_loss, train_acc = run_epoch(model, loss_fn, train_dataloader, optimizer)
        model.eval()
        with torch.no_grad():
            val_loss, val_acc = run_epoch(model, loss_fn, val_dataloader)
        train_loss_list.append(train_loss)
        val_loss_list.append(val_loss)
        train_accuracy_list.append(train_acc)
        val_accuracy_list.append(val_acc)
        print(f"Epoch {epoch}: train loss {train_loss:.6f} acc {train_acc:.4f} | "
              f"val loss {val_loss:.6f} acc {val_acc:.4f}", flush=True)
        if val_loss < min_val_loss:
            min_val_loss = val_loss
            torch.save(model.state_dict(), f"{save_path}/model.pt")
            print(f"Model saved (val loss {val_loss:.6f})", flush=True)
        if early_stopper.early_stop(val_loss):
            print(f"Early stop at epoch {epoch}", flush=True)
            break
    return train_loss_list, train_accuracy_list, val_loss_list, val_accuracy_list, epoch


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--num_classes', type=int, default=2, help='number of classes')
    parser.add_argument('--num_epoch', type=int, default=100, help='number of epoch')
    parser.add_argument('--batch_size', type=int, default=128, help='batch_size')
    parser.add_argument('--learning_rate', type=float, default=1e-5, help='learning rate')
    parser.add_argument('--model', type=str, default='I5', help='model name')
    parser.add_argument('--data_path', type=str, default='./data/I5R5/train.npz', help='images and labels')
    parser.add_argument('--save_path', type=str, default='./models/I5R5', help='path for storing model')
    parser.add_argument('--model_path', type=str, default='NONE', help='path for loading model')
    parser.add_argument('--early_stop_epoch', type=int, default=5, help='patience level for early stopper')
    parser.add_argument('--optimizer', type=str, default='ADAM', help='optimizer')
    opt = parser.parse_args()
    print(opt, flush=True)

    if opt.model == "I5":
        model = model.CNN_I5(opt.num_classes)
    elif opt.model == "I20":
        model = model.CNN_I20(opt.num_classes)
    if opt.model_path != "NONE":
        model.load_state_dict(torch.load(f"{opt.model_path}/model.pt"))
    model.to(device)
    print(f"Device:{device}", flush=True)
    print(model, flush=True)

    # read the dataset: uint8 chart images (N, H, W), 0 black / 255 white, and 0/1 labels
    with np.load(opt.data_path) as data:
        images, labels = data["images"], data["labels"]
    dataset = TensorDataset(torch.from_numpy(images).unsqueeze(1).float() / 255.0,
                            torch.from_numpy(labels.astype(np.int64)))
    print(f"Number of images: {len(dataset)}", flush=True)

    # divide dataset into train and val
    proportions = [0.7, 0.3]
    lengths = [int(p * len(dataset)) for p in proportions]
    lengths[-1] = len(dataset) - sum(lengths[:-1])
    generator = torch.Generator().manual_seed(7600)
    train_dataset, val_dataset = torch.utils.data.random_split(dataset, lengths, generator)
    train_dataloader = DataLoader(dataset=train_dataset, batch_size=opt.batch_size, shuffle=True)
    val_dataloader = DataLoader(dataset=val_dataset, batch_size=opt.batch_size, shuffle=True)
    print(f"training size:{len(train_dataloader.dataset)}, validation size:{len(val_dataloader.dataset)}", flush=True)

    # initialize loss function & optimizer
    loss_fn = nn.CrossEntropyLoss().to(device)
    if opt.optimizer == "ADAM":
        optimizer = optim.Adam(model.parameters(), lr=opt.learning_rate, weight_decay=0.1)
    elif opt.optimizer == "ADAMW":
        optimizer = optim.AdamW(model.parameters(), lr=opt.learning_rate, weight_decay=0.01)
    elif opt.optimizer == "SGD":
        optimizer = optim.SGD(model.parameters(), lr=opt.learning_rate, weight_decay=0.01)
    elif opt.optimizer == "RMSPROP":
        optimizer = optim.RMSprop(model.parameters(), lr=opt.learning_rate, weight_decay=0.01)
    early_stopper = EarlyStopper(patience=opt.early_stop_epoch, min_delta=5e-4)

    os.makedirs(opt.save_path, exist_ok=True)
    train_loss_list, train_accuracy_list, val_loss_list, val_accuracy_list, epoch = train(
        model, opt.num_epoch, loss_fn, optimizer, train_dataloader, val_dataloader, early_stopper, opt.save_path)

    # save df csv
    df = pd.DataFrame({"train_loss": train_loss_list, "train_acc": train_accuracy_list,
                       "val_loss": val_loss_list, "val_acc": val_accuracy_list})
    df.to_csv(f"{opt.save_path}/training_history.csv", index=False)
    print("Training History saved", flush=True)
