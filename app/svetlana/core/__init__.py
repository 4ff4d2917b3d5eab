"""Qt-free core of Svetlana: reading, objects, patches, bundle, training, prediction."""
