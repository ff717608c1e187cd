"""The method: importance estimators and regularisers (the paper's synapse + neuron importance
term, EWC, online EWC, SI, MAS, L2), the rivals (MIR, GSS, ER-ACE; DER, DER++, LwF) and the
named methods with their hyper-parameters. Built on paperlib.engine. Modules:
baseline_regularizers, distill, importance, methods, regularizers, rivals, sni."""
