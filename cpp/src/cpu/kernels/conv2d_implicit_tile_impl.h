// conv2d_implicit_tile_impl.h — the plain-loop 6x16 implicit-GEMM tile (see
// conv2d_implicit_tile.h), included inside an anonymous namespace by each ISA's file so the
// compiler vectorizes it with that file's flags. The scalar twin of the AVX2 f32 kernel.

template <class T>
void implicit_tile_6x16(int64_t n, const T* const* xs, const int64_t* off, const T* b,
                        int64_t ldb, T* out, bool accumulate) {
  T acc[6][16] = {};
  for (int64_t t = 0; t < n; ++t) {
    const T* bt = b + t * ldb;
    for (int i = 0; i < 6; ++i) {
      const T a = xs[i][off[t]];
      for (int j = 0; j < 16; ++j) acc[i][j] += a * bt[j];
    }
  }
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 16; ++j) out[i * 16 + j] = (accumulate ? out[i * 16 + j] : T(0)) + acc[i][j];
}
