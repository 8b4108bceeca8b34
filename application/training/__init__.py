"""The training application around the zoo: the part of larq-dybnn that trains.

`import larq_dybnn` gives the library (quantizers, layers, hyper function, summary);
this subpackage is what `larq-dybnn train`, `evaluate` and `demo` run, importable on
its own terms:

    config          TrainConfig (the options of a run) and TrainResult
    loop            train(config): a run in named stages, resumable
    data            loading labelled images (digits, tfds, folders, .tar.gz archives)
    preprocessing   the recipes' preprocessing and the tf.data pipelines
    recipe          ReActNet's optimizer, schedule, losses and step-1 -> 2 transfer
    optimizers      ScaledStepAdam: a multiple of the learning rate for chosen variables
    compiled        the variables of a compiled model's first step, created before fit
    checkpoints     epoch checkpoints and history trimming for bit-exact resumption
    distribute      tf.distribute strategies and worker roles
    monitoring      thresholds across samples (probe, TensorBoard histograms)
    timing          training throughput per epoch
    plots           training curves and threshold plots
    evaluation      accuracy of a saved .keras or .tflite on a dataset split
    demo            the main job: train, evaluate, export and verify a small DyBNN
"""

from larq_dybnn.training.compiled import create_step_variables
from larq_dybnn.training.config import TrainConfig, TrainResult
from larq_dybnn.training.loop import train

__all__ = ["TrainConfig", "TrainResult", "create_step_variables", "train"]
