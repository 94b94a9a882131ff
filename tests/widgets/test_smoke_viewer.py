def test_viewer_adds_layer(make_napari_viewer):
    import numpy as np
    viewer = make_napari_viewer()
    layer = viewer.add_image(np.zeros((8, 8)))
    assert layer in viewer.layers
