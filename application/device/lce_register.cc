// Registers Larq Compute Engine's custom ops into tflite-runtime's Python
// interpreter (InterpreterWithCustomOps), one function per binary-conv kernel.
//
// Compiled with LCE's kernel sources into one shared library by
// `larq_dybnn.arm.build_op_library`; the library must be loaded with RTLD_GLOBAL
// before the interpreter looks these functions up by name.
//
// tflite-runtime's extension exports tflite::MutableOpResolver::AddCustom; only that
// non-virtual member is declared here (the class itself lives in the extension).

#include "tensorflow/lite/c/common.h"

namespace tflite {
class MutableOpResolver {
 public:
  void AddCustom(const char* name, const TfLiteRegistration* registration,
                 int version = 1);
};
}  // namespace tflite

namespace compute_engine {
namespace tflite {
TfLiteRegistration* Register_QUANTIZE();
TfLiteRegistration* Register_DEQUANTIZE();
TfLiteRegistration* Register_BCONV_2D_REF();
TfLiteRegistration* Register_BCONV_2D_OPT_BGEMM();
TfLiteRegistration* Register_BCONV_2D_OPT_INDIRECT_BGEMM();
TfLiteRegistration* Register_BMAXPOOL_2D();
}  // namespace tflite
}  // namespace compute_engine

namespace {
void RegisterWith(tflite::MutableOpResolver* resolver, TfLiteRegistration* bconv) {
  using namespace compute_engine::tflite;
  resolver->AddCustom("LceQuantize", Register_QUANTIZE());
  resolver->AddCustom("LceDequantize", Register_DEQUANTIZE());
  resolver->AddCustom("LceBconv2d", bconv);
  resolver->AddCustom("LceBMaxPool2d", Register_BMAXPOOL_2D());
}
}  // namespace

extern "C" {
// LCE's default on devices: the NEON bgemm kernel (ruy packing).
void LarqDybnnRegisterBgemm(tflite::MutableOpResolver* resolver) {
  RegisterWith(resolver, compute_engine::tflite::Register_BCONV_2D_OPT_BGEMM());
}
// The indirect bgemm kernel (LCE's `use_indirect_bgemm=True`).
void LarqDybnnRegisterIndirectBgemm(tflite::MutableOpResolver* resolver) {
  RegisterWith(resolver, compute_engine::tflite::Register_BCONV_2D_OPT_INDIRECT_BGEMM());
}
// LCE's portable reference kernel (`use_reference_bconv=True`), for comparison.
void LarqDybnnRegisterReference(tflite::MutableOpResolver* resolver) {
  RegisterWith(resolver, compute_engine::tflite::Register_BCONV_2D_REF());
}
}
