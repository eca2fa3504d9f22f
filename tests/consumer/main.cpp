// SPDX-License-Identifier: MIT
// Tiny consumer program: rectify one BN layer and check the result (used by the consumer tests).
#include <shiftnorm/shiftnorm.hpp>

#include <cmath>
#include <cstdio>

int main() {
    shiftnorm::batch_norm<shiftnorm::rectified> bn(2);
    shiftnorm::tensor<float> x(shiftnorm::shape4{4, 2, 2, 2}), y(x.shape());
    for (shiftnorm::index_t i = 0; i < x.numel(); ++i) x[i] = float(i % 5);
    bn.forward_rectify(x, y.view());
    double s = 0;
    for (float v : y) s += v;
    std::printf("consumer ok: adapted mean %.3f, sum of outputs %.2e\n", bn.source.adapted.mean[0], s);
    return std::abs(s) < 1e-3 ? 0 : 1;
}
