# The CNNs of nhlben/Algorithmic-Trading-Based-on-Imaging-Price-Trends (model.py), re-implemented
# for convlab's real-program tests: that repository has no licence, so this is our own code
# following its structure (see ../README.md). Each model initialises its own weights (Xavier)
# in __init__ and chains its blocks in one nn.Sequential.
import torch
import torch.nn as nn


class PriceCNN(nn.Module):

    # xavier initialization of the conv and linear weights
    def init_weights(self, m):
        if isinstance(m, nn.Linear) or isinstance(m, nn.Conv2d):
            torch.nn.init.xavier_uniform_(m.weight)

    def block(self, c_in, c_out, padding, first):
        # 5x3 conv (the first one strided and dilated along the price axis), BN, leaky ReLU, 2x1 max pool
        extra = dict(stride=(3, 1), dilation=(2, 1)) if first else {}
        return nn.Sequential(
            nn.Conv2d(in_channels=c_in, out_channels=c_out, padding=padding, kernel_size=(5, 3), **extra),
            nn.BatchNorm2d(c_out, affine=True),
            nn.LeakyReLU(),
            nn.MaxPool2d(kernel_size=(2, 1)),
        )

    def __init__(self, num_classes, paddings, features):
        super(PriceCNN, self).__init__()
        channels = [1, 64, 128, 256][:len(paddings) + 1]
        self.blocks = nn.ModuleList(
            [self.block(channels[i], channels[i + 1], p, i == 0) for i, p in enumerate(paddings)])
        self.dropout = nn.Dropout(0.5)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(features, num_classes)
        self.all_layers = nn.Sequential(*self.blocks, self.dropout, self.flatten, self.fc)
        self.all_layers.apply(self.init_weights)

    def forward(self, x):
        x = self.all_layers(x)
        # output = F.softmax(x, dim=1): CrossEntropyLoss takes the logits
        return x


class CNN_I5(PriceCNN):
    # 5-day charts, 32x15 pixels: two blocks, 128 x 2 x 15 features
    def __init__(self, num_classes):
        super(CNN_I5, self).__init__(num_classes, [(2, 1), (2, 1)], 3840)


class CNN_I20(PriceCNN):
    # 20-day charts, 64x60 pixels: three blocks, 256 x 3 x 60 features
    def __init__(self, num_classes):
        super(CNN_I20, self).__init__(num_classes, [(3, 1), (3, 1), (2, 1)], 46080)


if __name__ == '__main__':
    model = CNN_I5(num_classes=2)
    print(model(torch.rand((1, 1, 32, 15))))
