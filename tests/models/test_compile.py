"""``torch.compile`` of every backbone: one graph each (no graph breaks), and compiled output equal
to the eager one.

Graph breaks are found with dynamo's ``explain`` (tracing only, no code generation: seconds per
model). Code generation (inductor, C++ on the CPU) takes 20-60 s even for a small model on two
cores, so the compiled-equals-eager check runs one family per mechanism kind in the e2e set.
Configs switch compilation on with mmengine's ``compile`` setting (``--cfg-options compile=True``,
it compiles the train step); the README gives its warm-up cost.
"""
import pytest
import torch

from small_backbones import CASES, build

from visattn_mm.compat import TORCH_VERSION, digit_version


# torch 2.1's dynamo breaks the graph at mmengine's deprecation wrapper (getfullargspec),
# Tensor.element_size() and list unpacking; the models still run compiled there, in pieces
@pytest.mark.skipif(TORCH_VERSION < digit_version('2.2.0'),
                    reason="torch 2.1's dynamo cannot trace these models in one graph")
@pytest.mark.parametrize('name', CASES)
def test_one_graph_without_breaks(name):
    model = build(name).eval()
    x = torch.randn(2, 3, *CASES[name][1])
    torch._dynamo.reset()
    with torch.no_grad():
        explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0, (name, explanation.break_reasons)
    assert explanation.graph_count == 1, (name, explanation.graph_count)


@pytest.mark.e2e
@pytest.mark.parametrize('name', ['FCViT', 'BViT'])
def test_inductor_output_equals_eager(name):
    model = build(name).eval()
    x = torch.randn(2, 3, *CASES[name][1])
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        eager, ours = model(x), compiled(x)
    for a, b in zip(eager, ours):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
