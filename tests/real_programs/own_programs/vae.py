"""A variational autoencoder of MNIST digits (fully connected encoder and decoder).

The encoder gives the mean and log-variance of a Gaussian over a small latent space; a
sample drawn with the reparameterisation trick is decoded back to pixels. The loss is the
summed binary cross-entropy of the reconstruction plus the KL divergence from N(0, I).
"""

import argparse
import os

import torch
import torch.utils.data
from torch import nn, optim
from torch.nn import functional as F
from torchvision import datasets, transforms
from torchvision.utils import save_image

PIXELS = 28 * 28


class VariationalAutoencoder(nn.Module):
    def __init__(self, hidden=128, latent=8):
        super().__init__()
        self.encoder = nn.Linear(PIXELS, hidden)
        self.to_mean = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, PIXELS), nn.Sigmoid()
        )

    def encode(self, x):
        h = F.relu(self.encoder(x))
        return self.to_mean(h), self.to_logvar(h)

    def sample(self, mean, logvar):
        """mean + sigma * eps: the draw stays differentiable in mean and logvar."""
        sigma = torch.exp(0.5 * logvar)
        return mean + sigma * torch.randn_like(sigma)

    def forward(self, x):
        mean, logvar = self.encode(x.view(-1, PIXELS))
        return self.decoder(self.sample(mean, logvar)), mean, logvar


def elbo_loss(reconstruction, x, mean, logvar):
    """Negative evidence lower bound of the batch (summed, not averaged)."""
    bce = F.binary_cross_entropy(reconstruction, x.view(-1, PIXELS), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp())
    return bce + kld


def train(args, model, device, loader, optimizer, epoch):
    model.train()
    total = 0.0
    for step, (images, _) in enumerate(loader):
        images = images.to(device)
        optimizer.zero_grad()
        reconstruction, mean, logvar = model(images)
        loss = elbo_loss(reconstruction, images, mean, logvar)
        loss.backward()
        total += loss.item()
        optimizer.step()
        if step % args.log_interval == 0:
            seen, progress = step * len(images), 100.0 * step / len(loader)
            print(
                f"Train Epoch: {epoch} [{seen}/{len(loader.dataset)} ({progress:.0f}%)]"
                f"\tLoss: {loss.item() / len(images):.6f}"
            )
    print(f"====> Epoch: {epoch} Average loss: {total / len(loader.dataset):.4f}")


def test(model, device, loader, epoch, batch_size):
    model.eval()
    total = 0.0
    with torch.no_grad():
        for step, (images, _) in enumerate(loader):
            images = images.to(device)
            reconstruction, mean, logvar = model(images)
            total += elbo_loss(reconstruction, images, mean, logvar).item()
            if step == 0:
                n = min(images.size(0), 8)
                pairs = torch.cat([images[:n], reconstruction.view(batch_size, 1, 28, 28)[:n]])
                save_image(pairs.cpu(), f"results/reconstruction_{epoch}.png", nrow=n)
    print(f"====> Test set loss: {total / len(loader.dataset):.4f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="VAE on MNIST")
    parser.add_argument("--batch-size", type=int, default=128, metavar="N")
    parser.add_argument("--epochs", type=int, default=10, metavar="N")
    parser.add_argument("--no-accel", action="store_true")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--log-interval", type=int, default=10, metavar="N")
    parser.add_argument("--latent", type=int, default=8)
    args = parser.parse_args(argv)

    use_accel = not args.no_accel and torch.accelerator.is_available()
    torch.manual_seed(args.seed)
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")
    options = {"num_workers": 1, "pin_memory": True} if use_accel else {}
    os.makedirs("results", exist_ok=True)

    to_tensor = transforms.ToTensor()
    train_loader = torch.utils.data.DataLoader(
        datasets.MNIST("../data", train=True, transform=to_tensor),
        batch_size=args.batch_size,
        shuffle=True,
        **options,
    )
    test_loader = torch.utils.data.DataLoader(
        datasets.MNIST("../data", train=False, transform=to_tensor),
        batch_size=args.batch_size,
        drop_last=True,
        **options,
    )

    model = VariationalAutoencoder(latent=args.latent).to(device)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        test(model, device, test_loader, epoch, args.batch_size)
        with torch.no_grad():
            codes = torch.randn(64, args.latent).to(device)
            samples = model.decoder(codes).cpu()
            save_image(samples.view(64, 1, 28, 28), f"results/sample_{epoch}.png")


if __name__ == "__main__":
    main()
