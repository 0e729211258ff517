// test_ops_shape.cpp: reshape, transpose, permute, concat, slice, index_select — op-table rows
// (forward vs a naive double reference, finite differences, CPU vs CUDA), hand-computed values,
// the threaded CPU paths at large sizes, and the error messages.
//
// The references move values with explicit multi-indices (unravel / ravel): out[idx] = x[map(idx)].
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/rng.h"
#include "tests/op_table.h"

using namespace gt;
using namespace gt::test;
using Catch::Matchers::Contains;

namespace {

std::string vec_str(const std::vector<int>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "}";
}

RefResult ref_permute(const HostTensor& x, const std::vector<int>& dims) {
  const int nd = x.shape.size();
  Shape out;
  std::vector<int> p;
  for (int d : dims) p.push_back(d < 0 ? d + nd : d);
  for (int d = 0; d < nd; ++d) out.push_back(x.shape[p[(size_t)d]]);
  RefResult r{out, std::vector<double>((size_t)out.numel())};
  for (int64_t j = 0; j < out.numel(); ++j) {
    std::vector<int64_t> oi = unravel(j, out), xi((size_t)nd);
    for (int d = 0; d < nd; ++d) xi[(size_t)p[(size_t)d]] = oi[(size_t)d];
    r.v[(size_t)j] = x.v[(size_t)ravel(xi, x.shape)];
  }
  return r;
}

OpRow reshape_row(Shape in, Shape to) {
  OpRow row;
  row.name = "reshape " + in.str() + " -> " + to.str();
  row.inputs = {normal(in)};
  row.op = [to](const std::vector<Tensor>& x) { return reshape(x[0], to); };
  row.ref = [to](const std::vector<HostTensor>& x) {
    Shape s = to;
    int64_t known = 1;
    for (int d = 0; d < s.size(); ++d)
      if (s[d] != -1) known *= s[d];
    for (int d = 0; d < s.size(); ++d)
      if (s[d] == -1) s[d] = x[0].shape.numel() / known;
    return RefResult{s, x[0].v};  // row-major order is unchanged
  };
  return row;
}

OpRow transpose_row(Shape in, int d0, int d1) {
  OpRow row;
  row.name = "transpose " + in.str() + " dims " + std::to_string(d0) + ", " + std::to_string(d1);
  row.inputs = {normal(in)};
  row.op = [d0, d1](const std::vector<Tensor>& x) { return transpose(x[0], d0, d1); };
  row.ref = [d0, d1](const std::vector<HostTensor>& x) {
    const int nd = x[0].shape.size();
    std::vector<int> dims;
    for (int d = 0; d < nd; ++d) dims.push_back(d);
    std::swap(dims[(size_t)(d0 < 0 ? d0 + nd : d0)], dims[(size_t)(d1 < 0 ? d1 + nd : d1)]);
    return ref_permute(x[0], dims);
  };
  return row;
}

OpRow permute_row(Shape in, std::vector<int> dims) {
  OpRow row;
  row.name = "permute " + in.str() + " by " + vec_str(dims);
  row.inputs = {normal(in)};
  row.op = [dims](const std::vector<Tensor>& x) { return permute(x[0], dims); };
  row.ref = [dims](const std::vector<HostTensor>& x) { return ref_permute(x[0], dims); };
  return row;
}

OpRow concat_row(std::vector<Shape> shapes, int dim) {
  OpRow row;
  row.name = "concat";
  for (const Shape& s : shapes) {
    row.name += " " + s.str();
    row.inputs.push_back(normal(s));
  }
  row.name += " dim " + std::to_string(dim);
  row.op = [dim](const std::vector<Tensor>& x) { return concat(x, dim); };
  row.ref = [dim](const std::vector<HostTensor>& x) {
    const int nd = x[0].shape.size(), d = dim < 0 ? dim + nd : dim;
    Shape out = x[0].shape;
    out[d] = 0;
    for (const HostTensor& t : x) out[d] += t.shape[d];
    RefResult r{out, std::vector<double>((size_t)out.numel())};
    int64_t offset = 0;
    for (const HostTensor& t : x) {
      for (int64_t j = 0; j < t.shape.numel(); ++j) {
        std::vector<int64_t> idx = unravel(j, t.shape);
        idx[(size_t)d] += offset;
        r.v[(size_t)ravel(idx, out)] = t.v[(size_t)j];
      }
      offset += t.shape[d];
    }
    return r;
  };
  return row;
}

OpRow slice_row(Shape in, int dim, int64_t start, int64_t end) {
  OpRow row;
  row.name = "slice " + in.str() + " dim " + std::to_string(dim) + " [" + std::to_string(start) + ", " +
             std::to_string(end) + ")";
  row.inputs = {normal(in)};
  row.op = [dim, start, end](const std::vector<Tensor>& x) { return slice(x[0], dim, start, end); };
  row.ref = [dim, start, end](const std::vector<HostTensor>& x) {
    const Shape& s = x[0].shape;
    const int d = dim < 0 ? dim + s.size() : dim;
    const int64_t b = start < 0 ? start + s[d] : start, e = end < 0 ? end + s[d] : end;
    Shape out = s;
    out[d] = e - b;
    RefResult r{out, {}};
    for (int64_t j = 0; j < out.numel(); ++j) {
      std::vector<int64_t> idx = unravel(j, out);
      idx[(size_t)d] += b;
      r.v.push_back(x[0].v[(size_t)ravel(idx, s)]);
    }
    return r;
  };
  return row;
}

OpRow index_select_row(Shape in, Shape idx_shape, std::vector<int32_t> idx) {
  OpRow row;
  row.name = "index_select " + in.str() + " rows {";
  for (size_t i = 0; i < idx.size(); ++i) row.name += (i ? "," : "") + std::to_string(idx[i]);
  row.name += "} shaped " + idx_shape.str();
  row.inputs = {normal(in), indices(idx_shape, idx)};
  row.op = [](const std::vector<Tensor>& x) { return index_select(x[0], x[1]); };
  row.ref = [](const std::vector<HostTensor>& x) {
    const Shape& s = x[0].shape;
    Shape out = x[1].shape;
    int64_t row_len = 1;
    for (int d = 1; d < s.size(); ++d) {
      out.push_back(s[d]);
      row_len *= s[d];
    }
    RefResult r{out, {}};
    for (int32_t t : x[1].idx)
      for (int64_t c = 0; c < row_len; ++c) r.v.push_back(x[0].v[(size_t)(t * row_len + c)]);
    return r;
  };
  return row;
}

std::vector<OpRow> rows() {
  return {
      reshape_row({5, 7, 11}, {35, 11}),
      reshape_row({2, 3, 5, 7}, {6, -1}),
      reshape_row({13}, {1, 13, 1}),
      transpose_row({7, 5}, 0, 1),
      transpose_row({5, 7, 11}, 0, 2),
      transpose_row({5, 7, 11}, -1, -2),
      transpose_row({2, 3, 5, 7}, 1, 3),
      transpose_row({5, 1, 7}, 0, 1),  // a size-1 dim moves: same memory order, different shape
      permute_row({5, 7, 11}, {2, 0, 1}),
      permute_row({5, 7, 11}, {-1, 0, 1}),
      permute_row({5, 7, 11}, {0, 1, 2}),  // identity
      permute_row({2, 3, 5, 7}, {3, 1, 0, 2}),
      permute_row({2, 3, 5, 7}, {2, 3, 0, 1}),  // coalesces to a 2-d transpose (6, 35) -> (35, 6)
      permute_row({2, 1, 3, 5, 1, 2}, {5, 3, 1, 0, 4, 2}),
      concat_row({{5, 2, 7}, {5, 3, 7}, {5, 6, 7}}, 1),
      concat_row({{2, 5}, {3, 5}, {1, 5}}, 0),
      concat_row({{5, 2}, {5, 7}, {5, 1}}, -1),
      concat_row({{2, 3, 5, 7}, {2, 1, 5, 7}}, -3),
      concat_row({{11}}, 0),
      slice_row({5, 11, 7}, 1, 2, 9),
      slice_row({11, 5}, 0, 0, 4),
      slice_row({5, 7, 13}, -1, -5, 13),
      slice_row({2, 3, 5, 7}, 2, 4, 5),
      slice_row({5, 7}, 1, 0, -1),
      index_select_row({7, 5}, {6}, {3, 0, 3, 6, 1, 3}),
      index_select_row({11, 2, 3}, {3}, {10, 0, 10}),
      index_select_row({13}, {2, 3}, {0, 12, 5, 5, 12, 1}),
      index_select_row({5, 7}, {0}, {}),  // no rows picked: the gradient is zero
  };
}

std::vector<float> grad_of(const Tensor& x) { return x.grad().to_vector(); }

}  // namespace

TEST_CASE("op table: shape", "[ops]") { run_op_table(rows()); }

TEST_CASE("op table: shape cpu vs cuda", "[ops][cuda]") { run_op_table_cuda(rows()); }

TEST_CASE("shape ops: hand-computed values", "[ops]") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor t = transpose(x, 0, 1);
  CHECK(t.shape() == Shape{3, 2});
  CHECK(t.to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(permute(x, {1, 0}).to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(slice(x, 1, 1, 3).to_vector() == std::vector<float>{2, 3, 5, 6});
  CHECK(slice(x, 0, -1, 2).to_vector() == std::vector<float>{4, 5, 6});
  CHECK(slice(Tensor::from_vector({10, 20, 30, 40}, {4}), 0, 1, 3).to_vector() == std::vector<float>{20, 30});
  CHECK(concat({Tensor::from_vector({1, 2}, {2}), Tensor::from_vector({3}, {1})}, 0).to_vector() ==
        std::vector<float>{1, 2, 3});
  Tensor c = concat({x, Tensor::from_vector({7, 8}, {2, 1})}, 1);
  CHECK(c.shape() == Shape{2, 4});
  CHECK(c.to_vector() == std::vector<float>{1, 2, 3, 7, 4, 5, 6, 8});
  CHECK(slice(x, 1, 2, 2).shape() == Shape{2, 0});
}

TEST_CASE("reshape is a view and its backward accumulates", "[ops]") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad();
  Tensor r = reshape(x, {3, -1});
  CHECK(r.shape() == Shape{3, 2});
  CHECK(r.data() == x.data());  // same storage, no copy
  // x used twice: both paths add into x's gradient.
  Tensor y = concat({reshape(x, {6}), reshape(x, {6})}, 0);
  backward(y, Tensor::from_vector({1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60}, {12}));
  CHECK(grad_of(x) == std::vector<float>{11, 22, 33, 44, 55, 66});
}

TEST_CASE("index_select: repeated indices accumulate in the gradient", "[ops]") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2}).set_requires_grad();
  Tensor idx = Tensor::from_indices({2, 0, 2}, {3});
  Tensor y = index_select(a, idx);
  CHECK(y.shape() == Shape{3, 2});
  CHECK(y.to_vector() == std::vector<float>{5, 6, 1, 2, 5, 6});
  backward(y, Tensor::ones({3, 2}));
  CHECK(grad_of(a) == std::vector<float>{1, 1, 0, 0, 2, 2});
}

TEST_CASE("slice and concat backward add into the right region", "[ops]") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad();
  backward(slice(x, 1, 1, 3), Tensor::from_vector({10, 20, 30, 40}, {2, 2}));
  CHECK(grad_of(x) == std::vector<float>{0, 10, 20, 0, 30, 40});

  Tensor a = Tensor::from_vector({1, 2}, {2, 1}).set_requires_grad();
  Tensor b = Tensor::from_vector({3, 4, 5, 6}, {2, 2});  // no gradient wanted
  Tensor c = Tensor::from_vector({7, 8}, {2, 1}).set_requires_grad();
  backward(concat({a, b, c}, 1), Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4}));
  CHECK(grad_of(a) == std::vector<float>{1, 5});
  CHECK(grad_of(c) == std::vector<float>{4, 8});
  CHECK(!b.grad().defined());
}

TEST_CASE("shape ops: errors name the values involved", "[ops]") {
  Tensor x = Tensor::zeros({2, 3});
  SECTION("concat shape mismatch names both shapes") {
    REQUIRE_THROWS_AS(concat({x, Tensor::zeros({3, 4})}, 0), Error);
    REQUIRE_THROWS_WITH(concat({x, Tensor::zeros({3, 4})}, 0), Contains("(2, 3)") && Contains("(3, 4)"));
    REQUIRE_THROWS_WITH(concat({x, Tensor::zeros({2, 3, 1})}, 1), Contains("(2, 3, 1)"));
    REQUIRE_THROWS_WITH(concat({}, 0), Contains("concat"));
    REQUIRE_THROWS_WITH(concat({x, x}, 2), Contains("dim 2") && Contains("(2, 3)"));
  }
  SECTION("index out of range on the CPU names the index and the size") {
    Tensor a = Tensor::zeros({3, 2});
    REQUIRE_THROWS_AS(index_select(a, Tensor::from_indices({0, 3}, {2})), Error);
    REQUIRE_THROWS_WITH(index_select(a, Tensor::from_indices({0, 3}, {2})), Contains("index 3") && Contains("size 3"));
    REQUIRE_THROWS_WITH(index_select(a, Tensor::from_indices({-1}, {1})), Contains("index -1"));
    REQUIRE_THROWS_WITH(index_select(a, Tensor::zeros({2})), Contains("int32"));
    REQUIRE_THROWS_WITH(index_select(Tensor::scalar(1.f), Tensor::from_indices({0}, {1})), Contains("()"));
  }
  SECTION("bad dims, permutations, ranges and shapes") {
    REQUIRE_THROWS_WITH(transpose(x, 0, 2), Contains("dim 2") && Contains("(2, 3)"));
    REQUIRE_THROWS_WITH(permute(x, {0, 0}), Contains("(0, 0)") && Contains("permutation"));
    REQUIRE_THROWS_WITH(permute(x, {0}), Contains("(2, 3)"));
    REQUIRE_THROWS_WITH(permute(x, {0, 2}), Contains("dim 2"));
    REQUIRE_THROWS_WITH(slice(x, 1, 2, 4), Contains("[2, 4)") && Contains("(2, 3)"));
    REQUIRE_THROWS_WITH(slice(x, 1, 2, 1), Contains("[2, 1)"));
    REQUIRE_THROWS_WITH(slice(x, -3, 0, 1), Contains("dim -3"));
    REQUIRE_THROWS_WITH(reshape(x, {4, 2}), Contains("(2, 3)") && Contains("(4, 2)"));
  }
}

// Sizes above kElementwiseGrain, so the CPU kernels run their threaded paths (chunk boundaries in
// the middle of odometer runs, blocks and rows), against the naive references.
TEST_CASE("shape ops: large shapes on the CPU threaded paths", "[ops]") {
  Generator gen(3);
  SECTION("permute forward and backward") {
    Tensor x = gen.randn({64, 33, 37});
    HostTensor hx{x.shape(), {}, {}};
    for (float f : x.to_vector()) hx.v.push_back(f);
    const std::vector<int> dims{2, 0, 1};
    RefResult want = ref_permute(hx, dims);
    Tensor xr = x.clone().set_requires_grad();
    Tensor y = permute(xr, dims);
    require_close("permute forward", y.to_vector(), want.v, 1e-12, 0);
    backward(y, y.clone());  // seed = the permuted values: the gradient is x itself
    require_close("permute backward", grad_of(xr), hx.v, 1e-12, 0);
  }
  SECTION("concat and slice") {
    Tensor a = gen.randn({7, 3001, 5}), b = gen.randn({7, 13, 5});
    Tensor ar = a.clone().set_requires_grad();
    Tensor c = concat({ar, b}, 1);
    require_close("slice of concat", slice(c, 1, 0, 3001).to_vector(), a.to_vector(), 1e-12, 0);
    require_close("slice of concat", slice(c, 1, 3001, 3014).to_vector(), b.to_vector(), 1e-12, 0);
    backward(c, c.clone());
    require_close("concat backward", grad_of(ar), a.to_vector(), 1e-12, 0);
  }
  SECTION("index_select scatter-add with repeated indices") {
    const int64_t rows = 1000, D = 40, m = 3000;
    Tensor a = gen.randn({rows, D}).set_requires_grad();
    std::vector<int32_t> idx;
    for (int64_t r = 0; r < m; ++r) idx.push_back((int32_t)((r * 7919) % 997));  // repeats, some rows unused
    Tensor y = index_select(a, Tensor::from_indices(idx, {m}));
    Tensor dout = gen.randn({m, D});
    backward(y, dout);
    std::vector<float> g = dout.to_vector();
    std::vector<double> want((size_t)(rows * D), 0.0);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < D; ++c) want[(size_t)(idx[(size_t)r] * D + c)] += g[(size_t)(r * D + c)];
    require_close("index_select backward", grad_of(a), want, 1e-5, 1e-5);
  }
}

// Large shapes through every CUDA kernel, forward and backward, against the CPU.
TEST_CASE("shape ops: large shapes cpu vs cuda", "[ops][cuda]") {
  if (!cuda_or_skip()) return;
  Generator gen(5);
  Tensor x = gen.randn({64, 33, 37});
  std::vector<int32_t> idx;
  for (int32_t r = 0; r < 3000; ++r) idx.push_back((r * 7919) % 61);
  const std::vector<std::pair<std::string, TensorFn>> ops = {
      {"permute", [](const std::vector<Tensor>& in) { return permute(in[0], {2, 0, 1}); }},
      {"transpose", [](const std::vector<Tensor>& in) { return transpose(in[0], 0, 1); }},
      {"concat", [](const std::vector<Tensor>& in) { return concat({in[0], in[0], slice(in[0], 1, 3, 4)}, 1); }},
      {"slice", [](const std::vector<Tensor>& in) { return slice(in[0], 2, 5, 30); }},
      {"index_select", [idx](const std::vector<Tensor>& in) {
         return index_select(in[0], Tensor::from_indices(idx, {(int64_t)idx.size()}, in[0].device()));
       }},
  };
  for (const auto& op : ops) {
    DYNAMIC_SECTION(op.first) {
      std::vector<Tensor> res[2];
      for (int d = 0; d < 2; ++d) {
        Tensor xd = x.to(d ? Device::CUDA : Device::CPU).clone().set_requires_grad();
        Tensor y = op.second({xd});
        Generator g2(9);
        backward(y, g2.randn(y.shape(), xd.device()));
        res[d] = {y, xd.grad()};
      }
      require_close(op.first + " forward", res[1][0].to_vector(), res[0][0].to_vector(), 1e-12, 0);
      require_close(op.first + " backward", res[1][1].to_vector(), res[0][1].to_vector(), 1e-5, 1e-5);
    }
  }
}

// concat and upsample_nearest2d write their input's first gradient on the CPU (grad_dest) instead
// of zero-filling it and adding. Both orders of a second use: the op's backward first (it writes,
// the other op adds) and second (it adds onto the other op's gradient). A write where an add is due
// loses r2's term; an add onto an unfilled buffer adds garbage: both fail the exact comparison
// (each element of da is one product plus at most one sum of four, exact in float for these values).
TEST_CASE("concat, upsample_nearest2d backward: first gradient written, later ones added", "[ops]") {
  Generator gen(5);
  // Values k/8 with small k: every product and sum below is exact in float.
  auto grid = [&](const Shape& s) {
    Tensor t = gen.randn(s);
    std::vector<float> v = t.to_vector();
    for (float& e : v) e = std::round(e * 8.f) / 8.f;
    return Tensor::from_vector(v, s);
  };
  const Tensor r1 = grid({2, 5, 3, 4}), r2 = grid({2, 3, 3, 4}), ru = grid({2, 3, 6, 8});
  for (int order = 0; order < 2; ++order) {
    INFO("order " << order << (order ? ": the other use recorded last (its backward runs first)" : ""));
    Tensor a = grid({2, 3, 3, 4}).set_requires_grad(true), b = grid({2, 2, 3, 4}).set_requires_grad(true);
    Tensor other, cat, up;
    if (order == 0) other = sum(mul(a, r2));
    cat = sum(mul(concat({a, b}, 1), r1));
    up = sum(mul(upsample_nearest2d(a, 2), ru));
    if (order == 1) other = sum(mul(a, r2));
    backward(add(add(cat, up), other));
    const std::vector<float> da = a.grad().to_vector(), db = b.grad().to_vector();
    const std::vector<float> v1 = r1.to_vector(), v2 = r2.to_vector(), vu = ru.to_vector();
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 5; ++c)
        for (int64_t h = 0; h < 3; ++h)
          for (int64_t w = 0; w < 4; ++w) {
            const float g1 = v1[(size_t)(((n * 5 + c) * 3 + h) * 4 + w)];
            if (c >= 3) {
              REQUIRE(db[(size_t)(((n * 2 + c - 3) * 3 + h) * 4 + w)] == g1);
              continue;
            }
            const auto u = [&](int64_t i, int64_t j) { return vu[(size_t)(((n * 3 + c) * 6 + 2 * h + i) * 8 + 2 * w + j)]; };
            const size_t k = (size_t)(((n * 3 + c) * 3 + h) * 4 + w);
            REQUIRE(da[k] == g1 + ((u(0, 0) + u(0, 1)) + u(1, 0)) + u(1, 1) + v2[k]);
          }
  }
}
