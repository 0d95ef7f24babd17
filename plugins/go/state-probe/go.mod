module state-probe

go 1.25
