"""The SOI segmenter (3DAngioNet section 2.2): data cache, dataset and augmentation, model,
loss, safetensors checkpoints and the training loop.

Modules: :mod:`.cache` (build / open the compact data cache), :mod:`.augment` (SOI crop
warping and intensity augmentation), :mod:`.dataset` (torch Dataset and the resumable
batch order), :mod:`.model`, :mod:`.losses`, :mod:`.checkpoint`, :mod:`.trainer`.
"""
