# The baseline CNN of lich99/Stock_CNN (models/baseline.py), re-implemented for convlab's
# real-program tests: that repository has no licence, so this is our own code following its
# structure (see ../README.md). Jiang, Kelly & Xiu's 20-day model: three 5x3 conv blocks with
# batch norm, leaky ReLU and 2x1 max pooling, then dropout and a linear layer on 46,080 features.
import torch.nn as nn


def conv_block(c_in, c_out):
    # stride 3 and dilation 2 along the price axis, padded so 64 rows come out as 32, 16, 8
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=(5, 3), stride=(3, 1), dilation=(2, 1), padding=(12, 1)),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(negative_slope=0.01, inplace=True),
        nn.MaxPool2d((2, 1), stride=(2, 1)),
    )


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = conv_block(1, 64)
        self.layer2 = conv_block(64, 128)
        self.layer3 = conv_block(128, 256)
        self.fc1 = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Linear(46080, 2),
        )
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x = x.reshape(-1, 1, 64, 60)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = x.reshape(-1, 46080)
        x = self.fc1(x)
        # logits out: CrossEntropyLoss applies the softmax
        return x
