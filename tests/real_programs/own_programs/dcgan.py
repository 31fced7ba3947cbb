"""A deep convolutional GAN on 28x28 MNIST digits.

The generator turns noise vectors into images with transposed convolutions; the
discriminator tells real images from generated ones. Both are trained in alternation with
binary cross-entropy and Adam, weights initialised from N(0, 0.02) as in the DCGAN paper.
"""

import argparse
import os
import random

import torch
import torch.backends.cudnn as cudnn
import torch.nn as nn
import torch.optim as optim
import torch.utils.data
import torchvision.datasets as dset
import torchvision.transforms as transforms
import torchvision.utils as vutils

REAL, FAKE = 1.0, 0.0


class Generator(nn.Module):
    """(nz, 1, 1) noise -> (1, 28, 28) image in [-1, 1]."""

    def __init__(self, nz, ngf):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 2, 7, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, 1, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, noise):
        return self.main(noise)


class Discriminator(nn.Module):
    """(1, 28, 28) image -> probability that it is real."""

    def __init__(self, ndf):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 7, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, image):
        return self.main(image).view(-1, 1).squeeze(1)


def init_weights(module):
    """DCGAN's initialisation, chosen by the layer's class name."""
    kind = type(module).__name__
    if "Conv" in kind:
        module.weight.data.normal_(0.0, 0.02)
    elif "BatchNorm" in kind:
        module.weight.data.normal_(1.0, 0.02)
        module.bias.data.fill_(0)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="DCGAN on MNIST")
    parser.add_argument("--dataroot", default="../data")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--nz", type=int, default=64, help="length of the noise vector")
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--ndf", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.0002)
    parser.add_argument("--beta1", type=float, default=0.5)
    parser.add_argument("--iterations", type=int, default=0, help="stop after this many (0: all)")
    parser.add_argument("--outf", default="dcgan_out")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-accel", action="store_true")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.outf, exist_ok=True)
    seed = random.randint(1, 10000) if args.seed is None else args.seed
    print("Random Seed: ", seed)
    random.seed(seed)
    torch.manual_seed(seed)
    cudnn.benchmark = True

    if not args.no_accel and torch.accelerator.is_available():
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")

    dataset = dset.MNIST(
        root=args.dataroot,
        download=False,
        transform=transforms.Compose(
            [
                transforms.Resize(args.image_size),
                transforms.ToTensor(),
                transforms.Normalize((0.5,), (0.5,)),
            ]
        ),
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers
    )

    net_g = Generator(args.nz, args.ngf).to(device)
    net_g.apply(init_weights)
    net_d = Discriminator(args.ndf).to(device)
    net_d.apply(init_weights)
    print(net_g)

    criterion = nn.BCELoss()
    fixed_noise = torch.randn(args.batch_size, args.nz, 1, 1, device=device)
    opt_d = optim.Adam(net_d.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    opt_g = optim.Adam(net_g.parameters(), lr=args.lr, betas=(args.beta1, 0.999))

    done = 0
    for epoch in range(args.epochs):
        for i, (real, _) in enumerate(loader):
            real = real.to(device)
            size = real.size(0)
            # (1) the discriminator: maximise log D(x) + log(1 - D(G(z)))
            net_d.zero_grad()
            label = torch.full((size,), REAL, dtype=real.dtype, device=device)
            err_real = criterion(net_d(real), label)
            err_real.backward()
            d_x = net_d(real).mean().item()
            noise = torch.randn(size, args.nz, 1, 1, device=device)
            fake = net_g(noise)
            label.fill_(FAKE)
            out = net_d(fake.detach())
            err_fake = criterion(out, label)
            err_fake.backward()
            d_g_z1 = out.mean().item()
            opt_d.step()
            # (2) the generator: maximise log D(G(z)), fakes labelled real
            net_g.zero_grad()
            label.fill_(REAL)
            out = net_d(fake)
            err_g = criterion(out, label)
            err_g.backward()
            opt_g.step()
            d_g_z2 = out.mean().item()
            print(
                f"[{epoch}/{args.epochs}][{i}/{len(loader)}] "
                f"Loss_D: {(err_real + err_fake).item():.4f} Loss_G: {err_g.item():.4f} "
                f"D(x): {d_x:.4f} D(G(z)): {d_g_z1:.4f} / {d_g_z2:.4f}"
            )
            done += 1
            if args.iterations and done >= args.iterations:
                break
        vutils.save_image(real, f"{args.outf}/real_samples.png", normalize=True)
        with torch.no_grad():
            samples = net_g(fixed_noise)
        vutils.save_image(samples, f"{args.outf}/fake_epoch_{epoch:03d}.png", normalize=True)
        torch.save(net_g.state_dict(), f"{args.outf}/net_g_epoch_{epoch}.pth")
        torch.save(net_d.state_dict(), f"{args.outf}/net_d_epoch_{epoch}.pth")
        if args.iterations and done >= args.iterations:
            break


if __name__ == "__main__":
    main()
