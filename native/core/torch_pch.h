// Precompiled header for the cmake-js route: the LibTorch headers every pure-LibTorch file uses.
// (Files still include what they need themselves, so the node-gyp route builds without it.)
#pragma once
#include <ATen/ATen.h>
#include <torch/nn.h>
#include <torch/optim.h>
