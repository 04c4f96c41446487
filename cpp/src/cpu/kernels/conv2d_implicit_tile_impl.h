// conv2d_implicit_tile_impl.h — the plain-loop 6x16 implicit-GEMM tile (see
// conv2d_implicit_tile.h), included inside an anonymous namespace by each ISA's file so the
// compiler vectorizes it with that file's flags. The scalar twin of the AVX2 f32 kernel.

template <class T>
void implicit_tile_6x16(int64_t np, const T* x, const int64_t* off, int64_t sx, const T* wp,
                        T* out) {
  T acc[6][16] = {};
  for (int64_t t = 0; t < np; ++t) {
    const T* xt = x + off[t];
    const T* wt = wp + t * 16;
    for (int i = 0; i < 6; ++i) {
      const T a = xt[i * sx];
      for (int j = 0; j < 16; ++j) acc[i][j] += a * wt[j];
    }
  }
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 16; ++j) out[i * 16 + j] = acc[i][j];
}
